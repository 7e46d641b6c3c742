using System.Text;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// Decides which uploads LuluClaw ingests and turns each kind into readable text.
/// </summary>
internal static class DocumentText
{
    /// <summary>The media type of a PDF document.</summary>
    public const string Pdf = "application/pdf";

    /// <summary>The media type of plain text.</summary>
    public const string PlainText = "text/plain";

    /// <summary>The media type of Markdown.</summary>
    public const string Markdown = "text/markdown";

    /// <summary>The media type of HTML.</summary>
    public const string Html = "text/html";

    private static readonly Dictionary<string, string> ByExtension = new(StringComparer.OrdinalIgnoreCase)
    {
        [".txt"] = PlainText,
        [".text"] = PlainText,
        [".md"] = Markdown,
        [".markdown"] = Markdown,
        [".html"] = Html,
        [".htm"] = Html,
        [".xhtml"] = Html,
    };

    private static readonly Dictionary<string, string> ByDeclaredType = new(StringComparer.OrdinalIgnoreCase)
    {
        [PlainText] = PlainText,
        [Markdown] = Markdown,
        ["text/x-markdown"] = Markdown,
        [Html] = Html,
        ["application/xhtml+xml"] = Html,
    };

    /// <summary>
    /// The media type LuluClaw ingests an upload as, or null when it does not ingest it.
    /// </summary>
    /// <remarks>
    /// The bytes are trusted over the labels: a file starting with <c>%PDF-</c> is a PDF whatever
    /// its name or declared type says, and a file called <c>.pdf</c> that does not start so is
    /// refused (it cannot be parsed). The text types need a head that looks like UTF-8 text (no NUL,
    /// no invalid sequence), so a renamed image or program is refused; among them the file name's
    /// extension decides, then the declared Content-Type. A name with an extension we do not know
    /// (.exe, .png) is refused even with a text Content-Type, since browsers and clients label
    /// unknown files loosely.
    /// </remarks>
    /// <param name="fileName">The upload's file name, if any.</param>
    /// <param name="declaredContentType">The Content-Type the client declared, parameters allowed.</param>
    /// <param name="head">The first bytes of the upload (a few hundred are enough).</param>
    public static string? MediaTypeOf(string? fileName, string? declaredContentType, ReadOnlySpan<byte> head)
    {
        if (head.StartsWith("%PDF-"u8))
        {
            return Pdf;
        }

        var extension = string.IsNullOrWhiteSpace(fileName) ? "" : Path.GetExtension(fileName.Trim());
        var declared = declaredContentType?.Split(';')[0].Trim() ?? "";
        if (extension.Equals(".pdf", StringComparison.OrdinalIgnoreCase)
            || declared.Equals(Pdf, StringComparison.OrdinalIgnoreCase)
            || !LooksLikeText(head))
        {
            return null;
        }

        if (extension.Length > 0)
        {
            return ByExtension.GetValueOrDefault(extension);
        }

        return ByDeclaredType.GetValueOrDefault(declared);
    }

    /// <summary>Extracts the readable text of <paramref name="content"/>, read as <paramref name="mediaType"/>.</summary>
    /// <exception cref="InvalidDataException">The document has no readable text, or cannot be parsed.</exception>
    /// <exception cref="NotSupportedException">The media type is not one <see cref="MediaTypeOf"/> returns.</exception>
    public static ExtractedDocument Extract(byte[] content, string mediaType)
    {
        ArgumentNullException.ThrowIfNull(content);
        var document = mediaType switch
        {
            Pdf => PdfText.Extract(content),
            Html => HtmlText.Extract(content),
            Markdown => MarkdownText.Extract(Decode(content)),
            PlainText => FromPlainText(Decode(content)),
            _ => throw new NotSupportedException($"LuluClaw does not read {mediaType} documents."),
        };
        return document.Sections.Count > 0
            ? document
            : throw new InvalidDataException(mediaType == Pdf
                ? "the PDF has no text layer (scanned images?): export it with text or run OCR first"
                : "the document has no readable text");
    }

    /// <summary>The document's text as one string, the form its content hash is taken of.</summary>
    public static string Flatten(ExtractedDocument document)
    {
        var builder = new StringBuilder();
        foreach (var section in document.Sections)
        {
            if (section.Heading is not null)
            {
                builder.Append(section.Heading).Append('\n');
            }

            builder.Append(section.Text).Append("\n\n");
        }

        return builder.ToString();
    }

    /// <summary>Keeps the sections that have text; a section that is all whitespace says nothing.</summary>
    internal static ExtractedDocument Build(string? title, IEnumerable<ExtractedSection> sections)
    {
        var kept = sections.Where(s => !string.IsNullOrWhiteSpace(s.Text)).ToList();
        var cleanTitle = title is null ? null : TextSpacing.Inline(title);
        return new ExtractedDocument(string.IsNullOrEmpty(cleanTitle) ? null : cleanTitle, kept);
    }

    private static ExtractedDocument FromPlainText(string text) =>
        Build(null, [new ExtractedSection(null, TextSpacing.Paragraphs(text))]);

    /// <summary>UTF-8 with or without a byte-order mark; invalid bytes become U+FFFD.</summary>
    private static string Decode(byte[] content)
    {
        var span = content.AsSpan();
        if (span.StartsWith("\uFEFF"u8))
        {
            span = span[3..];
        }

        return Encoding.UTF8.GetString(span);
    }

    private static bool LooksLikeText(ReadOnlySpan<byte> head)
    {
        if (head.Contains((byte)0))
        {
            return false;
        }

        // The head may end inside a multi-byte character: cut back to its start before checking.
        var end = head.Length;
        for (var back = 1; back <= 3 && end - back >= 0; back++)
        {
            var b = head[end - back];
            if ((b & 0xC0) == 0xC0)
            {
                end -= back;
                break;
            }

            if ((b & 0x80) == 0)
            {
                break;
            }
        }

        return System.Text.Unicode.Utf8.IsValid(head[..end]);
    }
}

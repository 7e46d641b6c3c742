using System.Text;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// Turns each kind of document LuluClaw ingests into readable text. (Which uploads are taken, and
/// as what, the upload route decides: <c>DocumentTypes</c> in the Developer API.)
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

    /// <summary>Extracts the readable text of <paramref name="content"/>, read as <paramref name="mediaType"/>.</summary>
    /// <exception cref="InvalidDataException">The document has no readable text, or cannot be parsed.</exception>
    /// <exception cref="NotSupportedException">The media type is not one of <see cref="Pdf"/>, <see cref="Html"/>, <see cref="Markdown"/>, <see cref="PlainText"/>.</exception>
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
}

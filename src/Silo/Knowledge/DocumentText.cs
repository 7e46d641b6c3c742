using System.Text;
using System.Text.RegularExpressions;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;
using UglyToad.PdfPig;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// The readable text of what ingestion reads: PDF (PdfPig), HTML (AngleSharp), Markdown and plain
/// text, in sections under their headings.
/// </summary>
internal static partial class DocumentText
{
    /// <summary>Elements whose text is not the page's content: scripts and styles, navigation, page chrome, forms.</summary>
    private static readonly string[] NotContent =
        ["script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg", "iframe", "[hidden]", "[aria-hidden=true]"];

    /// <summary>Extracts <paramref name="content"/> read as <paramref name="mediaType"/>; throws <see cref="InvalidDataException"/> with a reason a person can act on if there is no text.</summary>
    public static ExtractedDocument Extract(byte[] content, string mediaType)
    {
        var document = mediaType switch
        {
            "application/pdf" => Pdf(content),
            "text/html" => Html(Encoding.UTF8.GetString(content)),
            "text/markdown" => Markdown(Encoding.UTF8.GetString(content)),
            _ => Plain(Encoding.UTF8.GetString(content)),
        };
        return document.Sections.Count > 0
            ? document
            : throw new InvalidDataException(mediaType == "application/pdf"
                ? "the PDF has no text layer (is it scanned images?); upload a PDF with selectable text, or its text as a .txt file"
                : "the document has no text to answer from");
    }

    /// <summary>Plain text: one section, paragraphs kept.</summary>
    public static ExtractedDocument Plain(string text, string? title = null) =>
        new(title, Normalise(text) is { Length: > 0 } clean ? [new ExtractedSection(null, clean)] : []);

    /// <summary>An HTML page: its <c>title</c> (or first <c>h1</c>), and its content in sections at <c>h1</c>–<c>h3</c>.</summary>
    public static ExtractedDocument Html(string html)
    {
        using var page = new HtmlParser().ParseDocument(html);
        return Html(page);
    }

    /// <summary>A parsed HTML page's readable text (see <see cref="Html(string)"/>).</summary>
    public static ExtractedDocument Html(IDocument page)
    {
        var title = Normalise(page.Title ?? "") is { Length: > 0 } t ? t : page.QuerySelector("h1")?.TextContent.Trim();
        var body = (IElement?)page.Body ?? page.DocumentElement;
        foreach (var chrome in body.QuerySelectorAll(string.Join(", ", NotContent)).ToArray())
        {
            chrome.Remove();
        }

        var sections = new List<ExtractedSection>();
        string? heading = null;
        var text = new StringBuilder();
        void Close()
        {
            if (Normalise(text.ToString()) is { Length: > 0 } clean)
            {
                sections.Add(new ExtractedSection(heading, clean));
            }

            text.Clear();
        }

        foreach (var node in body.ChildNodes)
        {
            Walk(node);
        }

        Close();
        return new ExtractedDocument(title, sections);

        void Walk(INode node)
        {
            switch (node)
            {
                case IElement { LocalName: "h1" or "h2" or "h3" } h:
                    Close();
                    heading = Normalise(h.TextContent);
                    break;
                case IElement { LocalName: "br" }:
                    text.Append('\n');
                    break;
                case IElement e:
                    var block = e.LocalName is "p" or "div" or "li" or "tr" or "section" or "article" or "main" or "h4" or "h5" or "h6" or "pre" or "blockquote" or "table" or "ul" or "ol" or "dd" or "dt";
                    if (block)
                    {
                        text.Append("\n\n");
                    }

                    foreach (var child in e.ChildNodes)
                    {
                        Walk(child);
                    }

                    if (block)
                    {
                        text.Append("\n\n");
                    }
                    else if (e.LocalName is "td" or "th")
                    {
                        text.Append(' ');
                    }

                    break;
                case IText t:
                    text.Append(t.Data);
                    break;
            }
        }
    }

    /// <summary>Markdown: sections at <c>#</c>, <c>##</c> and <c>###</c> headings; emphasis, code marks, images and links reduced to their text.</summary>
    public static ExtractedDocument Markdown(string markdown)
    {
        var sections = new List<ExtractedSection>();
        string? title = null;
        string? heading = null;
        var text = new StringBuilder();
        foreach (var line in markdown.Replace("\r\n", "\n").Split('\n'))
        {
            if (MarkdownHeading().Match(line) is { Success: true } match)
            {
                Add();
                heading = Inline(match.Groups[2].Value);
                title ??= match.Groups[1].Length == 1 ? heading : null;
                continue;
            }

            text.Append(Inline(line)).Append('\n');
        }

        Add();
        return new ExtractedDocument(title, sections);

        void Add()
        {
            if (Normalise(text.ToString()) is { Length: > 0 } clean)
            {
                sections.Add(new ExtractedSection(heading, clean));
            }

            text.Clear();
        }
    }

    /// <summary>A PDF: a section per page with text, headed <c>Page N</c>.</summary>
    private static ExtractedDocument Pdf(byte[] content)
    {
        try
        {
            using var pdf = PdfDocument.Open(content);
            var sections = new List<ExtractedSection>();
            foreach (var page in pdf.GetPages())
            {
                var words = string.Join(' ', page.GetWords().Select(w => w.Text));
                if (Normalise(words) is { Length: > 0 } clean)
                {
                    sections.Add(new ExtractedSection($"Page {page.Number}", clean));
                }
            }

            var title = pdf.Information.Title is { Length: > 0 } t ? t : null;
            return new ExtractedDocument(title, sections);
        }
        catch (Exception e) when (e is not InvalidDataException)
        {
            throw new InvalidDataException($"the PDF could not be read ({e.Message}); upload it again, or its text as a .txt file", e);
        }
    }

    private static string Inline(string line) =>
        MarkdownMarks().Replace(MarkdownLink().Replace(line.TrimStart('>', ' ').TrimStart('-', '*', '+').TrimStart(), "$1"), "");

    /// <summary>Whitespace folded within lines, blank lines kept as paragraph breaks, control characters gone.</summary>
    private static string Normalise(string text)
    {
        var paragraphs = Blank().Split(text.Replace("\r", ""))
            .Select(p => Spaces().Replace(new string(p.Select(c => char.IsControl(c) ? ' ' : c).ToArray()), " ").Trim())
            .Where(p => p.Length > 0);
        return string.Join("\n\n", paragraphs);
    }

    [GeneratedRegex(@"^(#{1,3})\s+(.*?)\s*#*\s*$")]
    private static partial Regex MarkdownHeading();

    [GeneratedRegex(@"!?\[([^\]]*)\]\([^)]*\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"(\*\*|__|\*|`+|~~)")]
    private static partial Regex MarkdownMarks();

    [GeneratedRegex(@"\n\s*\n")]
    private static partial Regex Blank();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}

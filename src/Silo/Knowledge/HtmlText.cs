using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Dom;
using AngleSharp.Html.Parser;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// The readable text of an HTML page, parsed with AngleSharp: chrome and hidden elements are
/// dropped, sections split at <c>h1</c>–<c>h3</c>.
/// </summary>
internal static class HtmlText
{
    /// <summary>Elements that hold no readable prose: scripts, page chrome, forms, embedded frames.</summary>
    private const string Unreadable =
        "script, style, noscript, template, nav, header, footer, aside, form, svg, iframe, "
        + "[hidden], [aria-hidden='true'], input[type='hidden']";

    /// <summary>Elements whose content reads as a block of its own.</summary>
    private static readonly HashSet<string> Blocks = new(StringComparer.OrdinalIgnoreCase)
    {
        "p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr",
        "blockquote", "pre", "h4", "h5", "h6", "figure", "figcaption", "address", "details", "summary",
        "br", "hr",
    };

    /// <summary>Parses <paramref name="content"/> (its charset from a BOM or a meta tag, else UTF-8) and extracts it.</summary>
    public static ExtractedDocument Extract(byte[] content)
    {
        using var stream = new MemoryStream(content, writable: false);
        var document = new HtmlParser().ParseDocument(stream);
        return Extract(document);
    }

    /// <summary>Extracts the readable text of a parsed page. The document is modified: unreadable elements are removed.</summary>
    public static ExtractedDocument Extract(IHtmlDocument document)
    {
        var title = document.Title;
        foreach (var element in document.QuerySelectorAll(Unreadable).ToList())
        {
            element.Remove();
        }

        foreach (var element in document.QuerySelectorAll("[style]").ToList())
        {
            var style = element.GetAttribute("style")!.Replace(" ", "", StringComparison.Ordinal);
            if (style.Contains("display:none", StringComparison.OrdinalIgnoreCase)
                || style.Contains("visibility:hidden", StringComparison.OrdinalIgnoreCase))
            {
                element.Remove();
            }
        }

        var reader = new SectionReader();
        reader.Walk(document.Body ?? (INode)document.DocumentElement);
        var sections = reader.Finish();
        if (string.IsNullOrWhiteSpace(title))
        {
            title = document.QuerySelector("h1")?.TextContent;
        }

        return DocumentText.Build(title, sections);
    }

    /// <summary>Walks the DOM in document order, starting a section at each h1–h3.</summary>
    private sealed class SectionReader
    {
        private readonly List<ExtractedSection> _sections = [];
        private readonly StringBuilder _text = new();
        private string? _heading;

        /// <summary>Reads <paramref name="node"/> and everything under it.</summary>
        public void Walk(INode node)
        {
            foreach (var child in node.ChildNodes)
            {
                switch (child)
                {
                    case IText text:
                        _text.Append(text.Data);
                        break;
                    case IElement element when element.LocalName is "h1" or "h2" or "h3":
                        Close();
                        _heading = TextSpacing.Inline(element.TextContent);
                        break;
                    case IElement element when Blocks.Contains(element.LocalName):
                        _text.Append("\n\n");
                        Walk(element);
                        _text.Append("\n\n");
                        break;
                    case IElement element when element.LocalName is "td" or "th":
                        Walk(element);
                        _text.Append(' ');
                        break;
                    case IElement element:
                        Walk(element);
                        break;
                }
            }
        }

        /// <summary>Closes the last section and returns them all.</summary>
        public List<ExtractedSection> Finish()
        {
            Close();
            return _sections;
        }

        private void Close()
        {
            var text = TextSpacing.Paragraphs(JoinSoftLines(_text.ToString()));
            if (text.Length > 0)
            {
                _sections.Add(new ExtractedSection(string.IsNullOrEmpty(_heading) ? null : _heading, text));
            }

            _text.Clear();
        }

        /// <summary>
        /// In HTML a single line break in the source is just a space; only the breaks the walker
        /// inserted for blocks (two in a row) separate paragraphs.
        /// </summary>
        private static string JoinSoftLines(string text)
        {
            var parts = text.ReplaceLineEndings("\n").Split("\n\n");
            return string.Join("\n\n", parts.Select(TextSpacing.Inline));
        }
    }
}

using UglyToad.PdfPig;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.DocumentLayoutAnalysis.TextExtractor;

namespace LuluClaw.Silo.Knowledge;

/// <summary>The text layer of a PDF through PdfPig, one section per page.</summary>
internal static class PdfText
{
    /// <summary>The longest first line still taken as a page's title.</summary>
    private const int MaxTitleLength = 80;

    /// <summary>Reads every page's text. A page whose text starts with a short title-like line gets that line as its heading, else "Page N".</summary>
    /// <exception cref="InvalidDataException">The bytes are not a PDF PdfPig can read (damaged, encrypted).</exception>
    public static ExtractedDocument Extract(byte[] content)
    {
        try
        {
            using var pdf = PdfDocument.Open(content);
            var sections = new List<ExtractedSection>();
            foreach (var page in pdf.GetPages())
            {
                var text = TextSpacing.Paragraphs(ContentOrderTextExtractor.GetText(page));
                if (text.Length == 0)
                {
                    continue;
                }

                var (heading, rest) = SplitTitle(text);
                sections.Add(new ExtractedSection(heading ?? $"Page {page.Number}", rest));
            }

            return DocumentText.Build(pdf.Information.Title, sections);
        }
        catch (PdfDocumentFormatException e)
        {
            throw new InvalidDataException($"the file is not a readable PDF ({e.Message})", e);
        }
    }

    /// <summary>
    /// An obvious title: a first line of at most 80 characters and 12 words, not ending like a
    /// sentence or a clause, with more text after it.
    /// </summary>
    private static (string? Heading, string Text) SplitTitle(string text)
    {
        var end = text.IndexOf('\n', StringComparison.Ordinal);
        if (end <= 0)
        {
            return (null, text);
        }

        var first = text[..end].Trim();
        var rest = text[(end + 1)..].Trim();
        var words = first.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        var looksLikeTitle = first.Length <= MaxTitleLength
            && words is > 0 and <= 12
            && !".,;:!?".Contains(first[^1], StringComparison.Ordinal)
            && char.IsLetterOrDigit(first[0])
            && rest.Length > 0;
        return looksLikeTitle ? (first, rest) : (null, text);
    }
}

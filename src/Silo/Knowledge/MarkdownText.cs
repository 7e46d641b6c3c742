using System.Text;
using System.Text.RegularExpressions;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// The readable text of a Markdown document: sections split at <c>#</c>, <c>##</c> and <c>###</c>
/// headings (and their setext forms), inline markup reduced to its text.
/// </summary>
/// <remarks>
/// Hand-written rather than through a Markdown library: we need text, not HTML, and a line-based
/// reading of headings plus a handful of inline rules covers what matters for retrieval; a full
/// CommonMark parser would add a package for edge cases (nested emphasis, HTML blocks) whose exact
/// rendering does not change what a chunk says.
/// </remarks>
internal static partial class MarkdownText
{
    /// <summary>Reads <paramref name="markdown"/> into sections.</summary>
    public static ExtractedDocument Extract(string markdown)
    {
        var sections = new List<ExtractedSection>();
        var body = new StringBuilder();
        string? heading = null;
        string? title = null;
        var inFence = false;
        var lines = markdown.ReplaceLineEndings("\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (FenceLine().IsMatch(line))
            {
                inFence = !inFence;
                body.Append('\n');
                continue;
            }

            if (inFence)
            {
                body.Append(line).Append('\n');
                continue;
            }

            var atx = AtxHeading().Match(line);
            int level;
            string? headingText = null;
            if (atx.Success)
            {
                level = atx.Groups[1].Length;
                headingText = atx.Groups[2].Value;
            }
            else if (i + 1 < lines.Length && line.Trim().Length > 0 && SetextUnderline().Match(lines[i + 1]) is { Success: true } underline)
            {
                level = underline.Groups[1].Value[0] == '=' ? 1 : 2;
                headingText = line;
                i++;
            }
            else
            {
                level = 0;
            }

            if (headingText is not null && level <= 3)
            {
                Close();
                heading = TextSpacing.Inline(Inline(headingText));
                if (level == 1 && title is null)
                {
                    title = heading;
                }

                continue;
            }

            body.Append(BlockLine(headingText ?? line)).Append('\n');
        }

        Close();
        return DocumentText.Build(title, sections);

        void Close()
        {
            var text = TextSpacing.Paragraphs(body.ToString());
            if (text.Length > 0)
            {
                sections.Add(new ExtractedSection(string.IsNullOrEmpty(heading) ? null : heading, text));
            }

            body.Clear();
        }
    }

    /// <summary>A body line without its block markup (quote marks, list markers, table pipes, rules, reference definitions).</summary>
    private static string BlockLine(string line)
    {
        if (RuleLine().IsMatch(line) || ReferenceDefinition().IsMatch(line) || TableSeparator().IsMatch(line))
        {
            return "";
        }

        var text = BlockPrefix().Replace(line, "");
        if (text.Contains('|', StringComparison.Ordinal))
        {
            text = text.Trim().Trim('|').Replace('|', ' ');
        }

        return Inline(text);
    }

    /// <summary>Inline markup reduced to its text: images to their alt text, links to their text, code and emphasis unwrapped.</summary>
    private static string Inline(string text)
    {
        text = Image().Replace(text, "$1");
        text = Link().Replace(text, "$1");
        text = ReferenceLink().Replace(text, "$1");
        text = AutoLink().Replace(text, "$1");
        text = Code().Replace(text, "$1");
        text = Emphasis().Replace(text, "$2");
        text = UnderscoreEmphasis().Replace(text, "$2");
        return text.Replace("~~", "", StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")]
    private static partial Regex AtxHeading();

    [GeneratedRegex(@"^\s{0,3}(=+|-+)\s*$")]
    private static partial Regex SetextUnderline();

    [GeneratedRegex(@"^\s{0,3}(```|~~~)")]
    private static partial Regex FenceLine();

    [GeneratedRegex(@"^\s{0,3}([-*_])(\s*\1){2,}\s*$")]
    private static partial Regex RuleLine();

    [GeneratedRegex(@"^\s{0,3}\[[^\]]+\]:\s*\S+")]
    private static partial Regex ReferenceDefinition();

    [GeneratedRegex(@"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")]
    private static partial Regex TableSeparator();

    [GeneratedRegex(@"^\s*(?:>\s?)*(?:[-*+]\s+|\d{1,9}[.)]\s+)?(?:\[[ xX]\]\s+)?")]
    private static partial Regex BlockPrefix();

    [GeneratedRegex(@"!\[([^\]]*)\]\([^)]*\)")]
    private static partial Regex Image();

    [GeneratedRegex(@"\[([^\]]+)\]\([^)]*\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"\[([^\]]+)\]\[[^\]]*\]")]
    private static partial Regex ReferenceLink();

    [GeneratedRegex(@"<((?:https?|mailto):[^>\s]+)>")]
    private static partial Regex AutoLink();

    [GeneratedRegex(@"`+([^`]+)`+")]
    private static partial Regex Code();

    [GeneratedRegex(@"(\*{1,3})(\S(?:.*?\S)?)\1")]
    private static partial Regex Emphasis();

    [GeneratedRegex(@"(?<![\p{L}\p{N}])(_{1,3})(\S(?:.*?\S)?)\1(?![\p{L}\p{N}])")]
    private static partial Regex UnderscoreEmphasis();
}

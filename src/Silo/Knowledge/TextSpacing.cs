using System.Text;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// Whitespace normalisation shared by every extractor: runs of spaces collapse to one, lines are
/// trimmed, paragraphs are separated by exactly one blank line.
/// </summary>
/// <remarks>
/// Hand-written because it is a few lines over <see cref="char.IsWhiteSpace(char)"/>; regular
/// expressions would do the same with more allocation and less clarity.
/// </remarks>
internal static class TextSpacing
{
    /// <summary>Collapses every run of whitespace (line breaks included) into one space and trims.</summary>
    public static string Inline(string text)
    {
        var builder = new StringBuilder(text.Length);
        var pendingSpace = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c) || c == '\u200B' || c == '\uFEFF')
            {
                pendingSpace = builder.Length > 0;
                continue;
            }

            if (pendingSpace)
            {
                builder.Append(' ');
                pendingSpace = false;
            }

            builder.Append(char.IsControl(c) ? ' ' : c);
        }

        return builder.ToString();
    }

    /// <summary>
    /// Normalises a block of text: paragraphs (split at blank lines) each keep their line breaks
    /// with every line inline-normalised; empty lines and paragraphs vanish.
    /// </summary>
    public static string Paragraphs(string text)
    {
        var paragraphs = new List<string>();
        var lines = new List<string>();
        foreach (var raw in text.ReplaceLineEndings("\n").Split('\n'))
        {
            var line = Inline(raw);
            if (line.Length > 0)
            {
                lines.Add(line);
                continue;
            }

            Flush();
        }

        Flush();
        return string.Join("\n\n", paragraphs);

        void Flush()
        {
            if (lines.Count > 0)
            {
                paragraphs.Add(string.Join('\n', lines));
                lines.Clear();
            }
        }
    }
}

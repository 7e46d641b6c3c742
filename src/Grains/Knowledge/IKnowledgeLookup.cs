namespace LuluClaw.Grains.Knowledge;

/// <summary>What a chat turn asks of the workspace's knowledge: the passages that bear on its question.</summary>
public interface IKnowledgeLookup
{
    /// <summary>The passages of the workspace's ingested sources (ready, or being ingested again; not in error) that best answer <paramref name="question"/>, best first; empty when it has none.</summary>
    Task<IReadOnlyList<KnowledgePassage>> FindAsync(Guid workspaceId, string question, CancellationToken cancellationToken);
}

/// <summary>A passage of a knowledge source, as the model is shown it.</summary>
/// <param name="Url">The page it came from, for a website; null otherwise.</param>
/// <param name="Heading">The heading it sits under (a manual entry's question, a document's section or page).</param>
public sealed record KnowledgePassage(string SourceId, string SourceName, string? Url, string? Heading, string Text);

/// <summary>How passages go into the model's prompt: one system message after the bot's own, in a fixed format.</summary>
public static class KnowledgePrompt
{
    /// <summary>
    /// The message: a line that says what follows and how to use it, then each passage as
    /// <c>[n] source name — heading (url)</c> on a line of its own and its text below it, separated by blank lines.
    /// </summary>
    public static string Format(IReadOnlyList<KnowledgePassage> passages)
    {
        var text = new System.Text.StringBuilder(
            "Knowledge sources of this workspace follow. Answer from them where they cover the question, citing them as [n]; "
            + "do not invent facts they do not state.\n");
        for (var i = 0; i < passages.Count; i++)
        {
            var p = passages[i];
            text.Append('\n').Append('[').Append(i + 1).Append("] ").Append(p.SourceName);
            if (p.Heading is { Length: > 0 } heading)
            {
                text.Append(" — ").Append(heading);
            }

            if (p.Url is { Length: > 0 } url)
            {
                text.Append(" (").Append(url).Append(')');
            }

            text.Append('\n').Append(p.Text).Append('\n');
        }

        return text.ToString();
    }
}

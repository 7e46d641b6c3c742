namespace LuluClaw.Silo.Knowledge;

/// <summary>One heading-delimited piece of a document's readable text.</summary>
/// <param name="Heading">The heading it sits under (a PDF's page, an HTML or Markdown heading, a manual entry's question); null for none.</param>
internal sealed record ExtractedSection(string? Heading, string Text);

/// <summary>A document's readable text, in order.</summary>
internal sealed record ExtractedDocument(string? Title, IReadOnlyList<ExtractedSection> Sections)
{
    /// <summary>All of its text, sections in order: what a page's content hash is taken over.</summary>
    public string AllText => string.Join("\n\n", Sections.Select(s => s.Heading is null ? s.Text : $"{s.Heading}\n{s.Text}"));
}

/// <summary>One chunk: its position in its page, its text, its size in tokens and the heading it came under.</summary>
internal sealed record TextChunk(int Index, string Text, int Tokens, string? Heading);

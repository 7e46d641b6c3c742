namespace LuluClaw.Silo.Knowledge;

/// <summary>One heading-delimited piece of a document's readable text.</summary>
/// <param name="Heading">The heading the text came under (a page label for a PDF), or null before the first heading.</param>
/// <param name="Text">The section's text, whitespace normalised, paragraphs separated by a blank line.</param>
internal sealed record ExtractedSection(string? Heading, string Text);

/// <summary>A document's readable text, in order.</summary>
/// <param name="Title">The document's own title, when it declares one.</param>
/// <param name="Sections">The sections in reading order; none of them is empty.</param>
internal sealed record ExtractedDocument(string? Title, IReadOnlyList<ExtractedSection> Sections);

namespace LuluClaw.Silo.Knowledge;

/// <summary>One chunk: its position in the source, its text, its size in tokens, and the heading (or page URL context) it came under.</summary>
/// <param name="Index">The chunk's position among all chunks of its document, from 0.</param>
/// <param name="Text">The chunk's text, never empty or whitespace.</param>
/// <param name="Tokens">The text's length in cl100k_base tokens, at most the chunker's maximum.</param>
/// <param name="Heading">The heading of the section the chunk came from, if it had one.</param>
internal sealed record TextChunk(int Index, string Text, int Tokens, string? Heading);

using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// Splits documents into chunks of at most <see cref="MaxTokens"/> cl100k_base tokens, with
/// <see cref="OverlapTokens"/> of a chunk's end repeated at the start of the next one of the same section.
/// </summary>
/// <remarks>
/// Per section:
/// 1. The text is cut into pieces that each fit the budget left after an overlap: paragraphs,
///    a paragraph too long into sentences, a sentence too long into words, a word too long at
///    token boundaries (the last resort, so an unspaced 5,000-character word, CJK without
///    punctuation or a run of emoji still fits).
/// 2. Pieces are packed greedily; each candidate chunk is counted whole, because token counts are
///    not additive across a join, so the maximum is checked on the exact text emitted.
/// 3. The next chunk starts with the end of the previous one (at a word boundary where one falls
///    inside the overlap), shortened word by word, or dropped, where it would not fit with the next piece.
/// Chunks never cross sections; the tokenizer is the one the embedding models count with.
/// </remarks>
internal sealed partial class TokenChunker
{
    /// <summary>The smallest maximum allowed: a single character can take four tokens.</summary>
    private const int MinimumMaxTokens = 16;

    /// <summary>cl100k_base from the Microsoft.ML.Tokenizers.Data.Cl100kBase package; thread-safe, built once.</summary>
    private static readonly Lazy<TiktokenTokenizer> SharedTokenizer =
        new(() => TiktokenTokenizer.CreateForEncoding("cl100k_base"));

    private readonly TiktokenTokenizer _tokenizer = SharedTokenizer.Value;

    /// <summary>Creates a chunker.</summary>
    /// <param name="maxTokens">The hard maximum per chunk, at least 16.</param>
    /// <param name="overlapTokens">How many tokens of a chunk's end open the next; from 0 to half the maximum.</param>
    public TokenChunker(int maxTokens = 256, int overlapTokens = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, MinimumMaxTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(overlapTokens);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(overlapTokens, maxTokens / 2);
        MaxTokens = maxTokens;
        OverlapTokens = overlapTokens;
    }

    /// <summary>The hard maximum size of a chunk, in tokens.</summary>
    public int MaxTokens { get; }

    /// <summary>How many tokens of a chunk's end are repeated at the start of the next chunk of the same section.</summary>
    public int OverlapTokens { get; }

    /// <summary>The length of <paramref name="text"/> in cl100k_base tokens.</summary>
    public int CountTokens(string text) => _tokenizer.CountTokens(text);

    /// <summary>Splits every section of <paramref name="document"/> into chunks, numbered across the document.</summary>
    public IReadOnlyList<TextChunk> Chunk(ExtractedDocument document)
    {
        ArgumentNullException.ThrowIfNull(document);
        var chunks = new List<TextChunk>();
        foreach (var section in document.Sections)
        {
            foreach (var text in ChunkSection(section.Text))
            {
                chunks.Add(new TextChunk(chunks.Count, text, CountTokens(text), section.Heading));
            }
        }

        return chunks;
    }

    private IEnumerable<string> ChunkSection(string sectionText)
    {
        // :: Step 1: pieces that fit beside an overlap.
        // Two tokens spare for the space joining overlap and piece, which can merge differently.
        var pieceBudget = MaxTokens - OverlapTokens - (OverlapTokens > 0 ? 2 : 0);
        var pieces = new List<(string Text, string Joiner)>();
        foreach (var paragraph in sectionText.Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            Split(paragraph, Level.Paragraph, pieceBudget, pieces);
        }

        // :: Step 2 and 3: greedy packing, each chunk opened by the previous one's end.
        string? current = null;
        foreach (var (piece, joiner) in pieces)
        {
            if (current is not null)
            {
                var joined = current + joiner + piece;
                if (CountTokens(joined) <= MaxTokens)
                {
                    current = joined;
                    continue;
                }

                yield return current;
                current = Opening(Overlap(current), piece);
            }

            current ??= piece;
        }

        if (current is not null)
        {
            yield return current;
        }
    }

    /// <summary>
    /// The overlap followed by <paramref name="piece"/>, the overlap losing words from its start
    /// until the two fit; null when no overlap fits (the piece then opens the chunk alone).
    /// </summary>
    private string? Opening(string? overlap, string piece)
    {
        while (!string.IsNullOrEmpty(overlap))
        {
            var opening = overlap + " " + piece;
            if (CountTokens(opening) <= MaxTokens)
            {
                return opening;
            }

            var space = overlap.IndexOf(' ', StringComparison.Ordinal);
            overlap = space < 0 ? null : overlap[(space + 1)..];
        }

        return null;
    }

    /// <summary>How finely a piece of text is being split.</summary>
    private enum Level
    {
        Paragraph,
        Sentence,
        Word,
    }

    /// <summary>Adds <paramref name="text"/> to <paramref name="pieces"/>, split at the coarsest boundary that makes every piece fit <paramref name="budget"/>.</summary>
    private void Split(string text, Level level, int budget, List<(string Text, string Joiner)> pieces)
    {
        var joiner = level == Level.Paragraph ? "\n\n" : " ";
        if (CountTokens(text) <= budget)
        {
            pieces.Add((text, joiner));
            return;
        }

        switch (level)
        {
            case Level.Paragraph:
                var sentences = SentenceEnd().Split(text).Where(s => s.Trim().Length > 0).Select(s => s.Trim()).ToList();
                if (sentences.Count > 1)
                {
                    var first = pieces.Count;
                    foreach (var sentence in sentences)
                    {
                        Split(sentence, Level.Sentence, budget, pieces);
                    }

                    // The first piece of a paragraph joins what came before as a paragraph does.
                    pieces[first] = (pieces[first].Text, "\n\n");
                    return;
                }

                goto case Level.Sentence;
            case Level.Sentence:
                var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (words.Length > 1)
                {
                    var first = pieces.Count;
                    foreach (var word in words)
                    {
                        Split(word, Level.Word, budget, pieces);
                    }

                    pieces[first] = (pieces[first].Text, joiner);
                    return;
                }

                goto case Level.Word;
            case Level.Word:
                var start = pieces.Count;
                foreach (var part in SplitAtTokens(text, budget))
                {
                    // Parts of one word are rejoined without a space so the word reads whole again.
                    pieces.Add((part, pieces.Count == start ? joiner : ""));
                }

                return;
        }
    }

    /// <summary>Cuts text that has no other boundary into parts of at most <paramref name="budget"/> tokens, never inside a code point.</summary>
    private IEnumerable<string> SplitAtTokens(string text, int budget)
    {
        // A window bounds each tokenisation, so a megabyte without a space is not re-read per part;
        // a part that ends at the window's edge is still checked below.
        var window = budget * 32;
        var rest = text;
        while (rest.Length > 0)
        {
            var probe = rest.Length > window ? rest[..AtCodePointStart(rest, window)] : rest;
            var cut = AtCodePointStart(rest, _tokenizer.GetIndexByTokenCount(probe, budget, out _, out _));
            var smallest = char.IsHighSurrogate(rest[0]) && rest.Length > 1 ? 2 : 1;
            cut = Math.Max(cut, smallest);

            // Re-tokenised alone, a prefix can count more than it did in context: shrink until it fits.
            while (cut > smallest && CountTokens(rest[..cut]) > budget)
            {
                cut = Math.Max(AtCodePointStart(rest, cut - 1), smallest);
            }

            yield return rest[..cut];
            rest = rest[cut..];
        }
    }

    /// <summary>
    /// The end of <paramref name="text"/> to repeat at the start of the next chunk: the words within
    /// its last <see cref="OverlapTokens"/> tokens, or its last word whole when that word alone is
    /// longer (up to twice the overlap), or, in text without spaces (CJK), the last tokens
    /// themselves; null when there is no overlap.
    /// </summary>
    private string? Overlap(string text)
    {
        if (OverlapTokens == 0)
        {
            return null;
        }

        var start = Math.Clamp(_tokenizer.GetIndexByTokenCountFromEnd(text, OverlapTokens, out _, out _), 0, text.Length);
        if (start < text.Length && char.IsLowSurrogate(text[start]))
        {
            start++;
        }

        var wholeWord = false;
        if (start > 0 && !char.IsWhiteSpace(text[start - 1]))
        {
            var next = text.IndexOfAny([' ', '\n'], start);
            var previous = text.LastIndexOfAny([' ', '\n'], start - 1);
            if (next > 0 && next < text.Length - 1)
            {
                start = next + 1;
            }
            else if (previous >= 0)
            {
                start = previous + 1;
                wholeWord = true;
            }
        }

        var overlap = text[start..].Trim();
        while (overlap.Length > 0 && CountTokens(overlap) is var count && count > OverlapTokens)
        {
            // Counted alone, the overlap can exceed what it counted in context: drop a word, or a
            // code point where there are no words.
            var space = overlap.IndexOfAny([' ', '\n']);
            if (space < 0 && wholeWord && count <= 2 * OverlapTokens)
            {
                break;
            }

            var cut = space >= 0 ? space + 1 : char.IsHighSurrogate(overlap[0]) && overlap.Length > 1 ? 2 : 1;
            overlap = overlap[cut..].TrimStart();
        }

        return overlap.Length == 0 ? null : overlap;
    }

    /// <summary>Moves a cut back so that it does not fall between the halves of a surrogate pair.</summary>
    private static int AtCodePointStart(string text, int cut)
    {
        cut = Math.Clamp(cut, 0, text.Length);
        if (cut > 0 && cut < text.Length && char.IsLowSurrogate(text[cut]) && char.IsHighSurrogate(text[cut - 1]))
        {
            cut--;
        }

        return cut;
    }

    [GeneratedRegex(@"(?<=[.!?;…])\s+|(?<=[。！？；])")]
    private static partial Regex SentenceEnd();
}

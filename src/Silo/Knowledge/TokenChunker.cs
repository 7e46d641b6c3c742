using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// Splits documents into chunks of at most <see cref="MaxTokens"/> tokens, counted by OpenAI's
/// <c>cl100k_base</c> tokenizer (Microsoft.ML.Tokenizers; its data package ships the vocabulary, so
/// nothing is downloaded). A chunk ends at a paragraph, else a sentence, else a word boundary; a run
/// of text with none of those inside the budget is cut at a token boundary. Each chunk after the
/// first of a section starts with up to <see cref="OverlapTokens"/> tokens of the one before, so a
/// fact that straddles a boundary is whole in one of them. Chunks never span two sections.
/// </summary>
/// <remarks>
/// The maximum is enforced, not estimated: every chunk is counted once assembled, and one over the
/// budget gives up its last piece to the next chunk. So no chunk is ever over it, whatever the input.
/// </remarks>
internal sealed partial class TokenChunker
{
    private static readonly Tokenizer Tokens = TiktokenTokenizer.CreateForEncoding("cl100k_base");

    /// <summary>A chunker with the given budget and overlap (the overlap at most half the budget).</summary>
    public TokenChunker(int maxTokens = 256, int overlapTokens = 32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 8);
        ArgumentOutOfRangeException.ThrowIfNegative(overlapTokens);
        MaxTokens = maxTokens;
        OverlapTokens = Math.Min(overlapTokens, maxTokens / 2);
    }

    /// <summary>The most tokens a chunk has.</summary>
    public int MaxTokens { get; }

    /// <summary>How many tokens of a chunk's end the next chunk of its section repeats, at most.</summary>
    public int OverlapTokens { get; }

    /// <summary>The tokens <paramref name="text"/> counts.</summary>
    public int CountTokens(string text) => Tokens.CountTokens(text);

    /// <summary>The chunks of <paramref name="document"/>, numbered from 0 across its sections.</summary>
    public IReadOnlyList<TextChunk> Chunk(ExtractedDocument document)
    {
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

    private IEnumerable<string> ChunkSection(string text)
    {
        var pieces = new Queue<string>(Pieces(text.Trim()));
        var current = new List<string>();
        var carried = 0; // how many pieces at the start of current repeat the previous chunk
        while (pieces.Count > 0)
        {
            current.Add(pieces.Dequeue());
            if (CountTokens(Join(current)) <= MaxTokens)
            {
                continue;
            }

            // Over the budget: the last piece starts the next chunk, unless it is all this chunk has.
            var last = current[^1];
            current.RemoveAt(current.Count - 1);
            if (current.Count == carried)
            {
                // Nothing new fits beside the overlap: drop the overlap, and cut a piece too big on its own.
                current.Clear();
                carried = 0;
                foreach (var part in CutToTokens(last).Reverse())
                {
                    Requeue(pieces, part);
                }

                continue;
            }

            var chunk = Join(current);
            yield return chunk;
            var overlap = Overlap(current);
            Requeue(pieces, last);
            current = overlap;
            carried = overlap.Count;
        }

        if (current.Count > carried && Join(current) is { Length: > 0 } rest)
        {
            yield return rest;
        }
    }

    /// <summary>The pieces at the end of <paramref name="chunk"/> that fit in the overlap, in order.</summary>
    private List<string> Overlap(List<string> chunk)
    {
        var overlap = new List<string>();
        for (var i = chunk.Count - 1; i > 0 && OverlapTokens > 0; i--)
        {
            overlap.Insert(0, chunk[i]);
            if (CountTokens(Join(overlap)) > OverlapTokens)
            {
                overlap.RemoveAt(0);
                break;
            }
        }

        return overlap;
    }

    private static void Requeue(Queue<string> pieces, string first)
    {
        var rest = pieces.ToArray();
        pieces.Clear();
        pieces.Enqueue(first);
        foreach (var piece in rest)
        {
            pieces.Enqueue(piece);
        }
    }

    /// <summary>A piece too big for a chunk, cut at the latest word boundary inside the budget, else at a token boundary.</summary>
    private IEnumerable<string> CutToTokens(string piece)
    {
        var rest = piece;
        while (rest.Length > 0)
        {
            if (CountTokens(rest) <= MaxTokens)
            {
                yield return rest;
                yield break;
            }

            var fits = Tokens.GetIndexByTokenCount(rest, MaxTokens, out _, out _);
            var cut = rest.LastIndexOf(' ', Math.Max(0, fits - 1), Math.Max(0, fits - 1));
            cut = cut > fits / 2 ? cut : fits;
            if (cut <= 0)
            {
                cut = Math.Max(1, char.IsHighSurrogate(rest[0]) ? 2 : 1); // one character is at most a few tokens, within any budget of 8
            }

            yield return rest[..cut];
            rest = rest[cut..];
        }
    }

    /// <summary>The text in pieces that each end at a boundary: paragraphs, split into sentences, split into words where a sentence is long.</summary>
    private IEnumerable<string> Pieces(string text)
    {
        foreach (var paragraph in Paragraph().Split(text).Where(p => !string.IsNullOrWhiteSpace(p)))
        {
            var first = true;
            foreach (var sentence in Sentence().Split(paragraph.Trim()).Where(s => s.Length > 0))
            {
                var lead = first ? "\n\n" : " ";
                first = false;
                if (CountTokens(sentence) <= MaxTokens / 2)
                {
                    yield return lead + sentence;
                    continue;
                }

                var word = true;
                foreach (var w in sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    yield return (word ? lead : " ") + w;
                    word = false;
                }
            }
        }
    }

    private static string Join(List<string> pieces) => string.Concat(pieces).Trim();

    [GeneratedRegex(@"\n\s*\n")]
    private static partial Regex Paragraph();

    [GeneratedRegex(@"(?<=[.!?。！？])\s+")]
    private static partial Regex Sentence();
}

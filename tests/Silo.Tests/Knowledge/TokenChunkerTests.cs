using System.Text;
using LuluClaw.Silo.Knowledge;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>The chunker's hard maximum, overlap, section boundaries and coverage.</summary>
public sealed class TokenChunkerTests
{
    private static readonly TokenChunker Chunker = new(maxTokens: 64, overlapTokens: 8);

    /// <summary>Inputs that have defeated boundary-based splitters: no spaces, no ASCII, surrogate pairs, nothing but punctuation.</summary>
    public static TheoryData<string, string> HostileInputs()
    {
        var data = new TheoryData<string, string>
        {
            { "unspaced word", new string('x', 2500) + "abcdefghij".PadRight(2500, 'q') },
            { "CJK without punctuation", string.Concat(Enumerable.Repeat("知识库检索增强生成模型分块测试", 300)) },
            { "CJK with full stops", string.Concat(Enumerable.Repeat("这是一个测试句子。", 400)) },
            { "emoji", string.Concat(Enumerable.Repeat("👩‍👩‍👧‍👦🦀🔥🇫🇷", 400)) },
            { "repeated punctuation", new string('!', 3000) + new string('.', 3000) + "?!?;…" },
            { "long URL", "https://example.com/" + string.Concat(Enumerable.Repeat("a1%2F-_~", 700)) },
            { "mixed scripts", string.Concat(Enumerable.Repeat("Ωμέγα мир عالم नमस्ते 🌍 ", 300)) },
        };
        data.Add("random text", RandomText(seed: 17, words: 4000));
        return data;
    }

    [Theory]
    [MemberData(nameof(HostileInputs))]
    public void Chunk_HostileInput_NoChunkExceedsMaxTokens(string name, string text)
    {
        var chunks = Chunker.Chunk(Document(("S", text)));

        Assert.NotEmpty(chunks);
        Assert.All(chunks, chunk =>
        {
            var tokens = Chunker.CountTokens(chunk.Text);
            Assert.True(tokens <= Chunker.MaxTokens, $"{name}: chunk {chunk.Index} has {tokens} tokens");
            Assert.Equal(tokens, chunk.Tokens);
            Assert.False(string.IsNullOrWhiteSpace(chunk.Text), $"{name}: chunk {chunk.Index} is blank");
        });
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.Index));
    }

    [Fact]
    public void Chunk_UnspacedWord_ChunksRejoinToTheWord()
    {
        var word = string.Concat(Enumerable.Range(0, 1000).Select(i => (char)('a' + (i * 7 % 26))));
        var chunks = new TokenChunker(maxTokens: 32, overlapTokens: 0).Chunk(Document(("S", word)));

        Assert.True(chunks.Count > 1);
        Assert.Equal(word, string.Concat(chunks.Select(c => c.Text)));
    }

    [Fact]
    public void Chunk_RandomText_EveryWordAppearsInSomeChunk()
    {
        var text = RandomText(seed: 3, words: 3000);

        var chunks = Chunker.Chunk(Document(("S", text)));

        var chunkWords = chunks.SelectMany(c => c.Text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToHashSet();
        var missing = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Where(w => !chunkWords.Contains(w)).ToList();
        Assert.Empty(missing);
    }

    [Fact]
    public void Chunk_LongSection_ConsecutiveChunksOverlap()
    {
        var text = RandomText(seed: 5, words: 2000);

        var chunks = Chunker.Chunk(Document(("S", text)));

        Assert.True(chunks.Count > 3);
        for (var i = 1; i < chunks.Count; i++)
        {
            var overlap = SharedWords(chunks[i - 1].Text, chunks[i].Text);
            Assert.True(overlap > 0, $"chunk {i} does not open with the end of chunk {i - 1}: [{chunks[i - 1].Text}] [{chunks[i].Text}]");
            var repeated = string.Join(' ', chunks[i].Text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Take(overlap));
            Assert.True(Chunker.CountTokens(repeated) <= 2 * Chunker.OverlapTokens, $"chunk {i} repeats more than the overlap: [{repeated}]");
        }
    }

    /// <summary>How many words end <paramref name="previous"/> and also open <paramref name="next"/>, in order (0 if none).</summary>
    private static int SharedWords(string previous, string next)
    {
        var before = previous.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var after = next.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        for (var k = Math.Min(before.Length, after.Length); k > 0; k--)
        {
            if (before.TakeLast(k).SequenceEqual(after.Take(k)))
            {
                return k;
            }
        }

        return 0;
    }

    [Fact]
    public void Chunk_FiftySections_ChunksNeverSpanSectionsAndKeepHeadings()
    {
        var sections = Enumerable.Range(0, 50)
            .Select(i => ($"Heading {i}", string.Join(' ', Enumerable.Repeat($"s{i}word", 20 + (i * 13 % 150)))))
            .ToArray();

        var chunks = Chunker.Chunk(Document(sections));

        Assert.Equal(sections.Select(s => s.Item1), chunks.Select(c => c.Heading).Distinct());
        Assert.All(chunks, chunk =>
        {
            var marker = $"s{chunk.Heading!["Heading ".Length..]}word";
            Assert.All(chunk.Text.Split(' '), word => Assert.Equal(marker, word));
            Assert.True(chunk.Tokens <= Chunker.MaxTokens);
        });
    }

    [Fact]
    public void Chunk_Paragraphs_PrefersParagraphBoundaries()
    {
        var first = string.Join(' ', Enumerable.Repeat("alpha", 30));
        var second = string.Join(' ', Enumerable.Repeat("beta", 30));

        var chunks = new TokenChunker(maxTokens: 48, overlapTokens: 0).Chunk(Document(("S", first + "\n\n" + second)));

        Assert.Equal([first, second], chunks.Select(c => c.Text));
    }

    [Fact]
    public void Chunk_ShortSections_OneChunkEach()
    {
        var chunks = Chunker.Chunk(Document(("A", "Short one."), ("B", "Short two.")));

        Assert.Equal([("A", "Short one."), ("B", "Short two.")], chunks.Select(c => (c.Heading!, c.Text)));
    }

    [Fact]
    public void Constructor_OverlapAboveHalfTheMaximum_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenChunker(maxTokens: 64, overlapTokens: 40));
    }

    private static ExtractedDocument Document(params (string Heading, string Text)[] sections) =>
        new("Test", sections.Select(s => new ExtractedSection(s.Heading, s.Text)).ToList());

    /// <summary>Words of random letters and lengths with sentence ends and paragraph breaks, the same for a seed.</summary>
    private static string RandomText(int seed, int words)
    {
        var random = new Random(seed);
        var builder = new StringBuilder();
        for (var i = 0; i < words; i++)
        {
            var length = random.Next(1, 14);
            for (var j = 0; j < length; j++)
            {
                builder.Append((char)('a' + random.Next(26)));
            }

            builder.Append(random.Next(12) switch
            {
                0 => ". ",
                1 => "\n\n",
                _ => " ",
            });
        }

        return builder.ToString();
    }
}

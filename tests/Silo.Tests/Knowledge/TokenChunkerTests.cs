using LuluClaw.Silo.Knowledge;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>The chunker's hard maximum, its overlap, and that it keeps every word and every section apart.</summary>
public sealed class TokenChunkerTests
{
    private static readonly TokenChunker Chunker = new(maxTokens: 40, overlapTokens: 8);

    public static TheoryData<string, string> Hostile()
    {
        var random = new Random(17);
        var words = Enumerable.Range(0, 2000).Select(_ => new string(Enumerable.Range(0, random.Next(1, 12)).Select(_ => (char)('a' + random.Next(26))).ToArray()));
        return new TheoryData<string, string>
        {
            { "one long unspaced word", new string('x', 5000) },
            { "CJK", string.Concat(Enumerable.Repeat("知識ベースの文章を分割します。", 200)) },
            { "emoji", string.Concat(Enumerable.Repeat("🦄🚀👩‍👩‍👧‍👦 ", 300)) },
            { "punctuation", new string('!', 3000) + "?.,;" + new string('-', 2000) },
            { "random words", string.Join(' ', words) },
            { "long sentences and paragraphs", string.Join("\n\n", Enumerable.Range(0, 30).Select(i => $"Paragraph {i} says that the widget number {i} costs {i * 3} euros and ships in {i % 7} days. It is blue.")) },
        };
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void NoChunkIsOverTheMaximum_AndEveryWordOfTheInputIsInAChunk(string what, string text)
    {
        var chunks = Chunker.Chunk(new ExtractedDocument(null, [new ExtractedSection("Only", text)]));

        Assert.NotEmpty(chunks);
        Assert.All(chunks, c => Assert.True(Chunker.CountTokens(c.Text) <= 40, $"{what}: a chunk of {Chunker.CountTokens(c.Text)} tokens"));
        Assert.All(chunks, c => Assert.Equal(Chunker.CountTokens(c.Text), c.Tokens));
        Assert.All(chunks, c => Assert.False(string.IsNullOrWhiteSpace(c.Text)));
        var joined = string.Concat(chunks.Select(c => c.Text)).Replace(" ", "").Replace("\n", "");
        foreach (var word in text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Distinct().Where(w => w.Length < 40))
        {
            Assert.Contains(word, joined);
        }
    }

    [Fact]
    public void ChunksOfASection_OverlapByUpToTheOverlap_AndNeverSpanTwoSections()
    {
        var sentences = string.Join(' ', Enumerable.Range(0, 40).Select(i => $"Fact {i} is true."));
        var document = new ExtractedDocument("T", [new ExtractedSection("First", sentences), new ExtractedSection("Second", "Short second section.")]);

        var chunks = Chunker.Chunk(document);

        var first = chunks.Where(c => c.Heading == "First").ToArray();
        Assert.True(first.Length > 2);
        for (var i = 1; i < first.Length; i++)
        {
            var previousTail = first[i - 1].Text.Split(". ").Last();
            Assert.StartsWith(previousTail.TrimEnd('.'), first[i].Text); // the last sentence of one chunk opens the next
        }

        var second = Assert.Single(chunks, c => c.Heading == "Second");
        Assert.Equal("Short second section.", second.Text);
        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.Index));
    }
}

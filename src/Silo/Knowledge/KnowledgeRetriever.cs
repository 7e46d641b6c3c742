using LuluClaw.Grains.Storage;

namespace LuluClaw.Silo.Knowledge;

/// <summary>How retrieval ranks: both rankings fused (the default), or one of them alone (to measure what fusion adds).</summary>
public enum RetrievalMode
{
    /// <summary>Full text and embeddings, fused by reciprocal rank.</summary>
    Hybrid,
    /// <summary>Full-text ranking only.</summary>
    TextOnly,
    /// <summary>Embedding similarity only.</summary>
    VectorOnly,
}

/// <summary>A retrieved chunk, its fused score, its cosine similarity to the question, and its rank on each side (null where it was not a candidate).</summary>
public sealed record KnowledgeHit(RetrievedChunk Chunk, double Score, float Similarity, int? TextRank, int? VectorRank);

/// <summary>
/// Hybrid retrieval over a workspace's <c>ready</c> knowledge: the store's full-text ranking and the
/// cosine similarity of the question's embedding to every chunk's (brute force over the workspace's
/// vectors, held in memory by <see cref="KnowledgeVectorCache"/>), each giving <see cref="Candidates"/>
/// candidates, fused by reciprocal rank (score = Σ 1 / (<see cref="RankConstant"/> + rank)). The cache
/// checks the workspace's sources in the database on every call, and the chunks are read from it, so a
/// source deleted on any silo is out of the next retrieval everywhere.
/// </summary>
internal sealed class KnowledgeRetriever(IKnowledgeStore store, KnowledgeVectorCache vectorCache, ITextEmbedder embedder)
{
    /// <summary>How many candidates each ranking gives before fusing.</summary>
    public const int Candidates = 50;

    /// <summary>Reciprocal rank fusion's constant: how much a rank past the first few still counts.</summary>
    public const int RankConstant = 60;

    /// <summary>The <paramref name="count"/> best chunks for <paramref name="question"/>, best first.</summary>
    public async Task<IReadOnlyList<KnowledgeHit>> RetrieveAsync(
        Guid workspaceId, string question, int count, RetrievalMode mode = RetrievalMode.Hybrid, CancellationToken cancellationToken = default)
    {
        var vectors = await vectorCache.GetAsync(workspaceId, cancellationToken);
        if (vectors.Count == 0)
        {
            return []; // no ready knowledge: nothing to embed the question for
        }

        var query = embedder.Embed([question], cancellationToken)[0];
        var similarity = vectors.Score(query);
        var byVector = mode == RetrievalMode.TextOnly ? [] : similarity.Top(Candidates);
        var byText = mode == RetrievalMode.VectorOnly ? [] : await store.SearchTextAsync(workspaceId, Terms(question), Candidates, cancellationToken);

        var scores = new Dictionary<long, (double Score, int? Text, int? Vector)>();
        for (var rank = 0; rank < byText.Count; rank++)
        {
            scores[byText[rank]] = (1.0 / (RankConstant + rank + 1), rank + 1, null);
        }

        for (var rank = 0; rank < byVector.Count; rank++)
        {
            var (score, text, _) = scores.GetValueOrDefault(byVector[rank]);
            scores[byVector[rank]] = (score + 1.0 / (RankConstant + rank + 1), text, rank + 1);
        }

        var best = scores.OrderByDescending(p => p.Value.Score).ThenBy(p => p.Key).Take(count).ToList();
        var chunks = await store.GetRetrievedChunksAsync(workspaceId, [.. best.Select(p => p.Key)], cancellationToken);
        var found = chunks.ToDictionary(c => c.ChunkId);
        return [.. best.Where(p => found.ContainsKey(p.Key))
            .Select(p => new KnowledgeHit(found[p.Key], p.Value.Score, similarity.GetValueOrDefault(p.Key), p.Value.Text, p.Value.Vector))];
    }

    /// <summary>The question's words for full-text search: letters and digits, lower case, each once.</summary>
    public static IReadOnlyList<string> Terms(string question)
    {
        var terms = new List<string>();
        var word = new System.Text.StringBuilder();
        foreach (var c in question + " ")
        {
            if (char.IsLetterOrDigit(c))
            {
                word.Append(char.ToLowerInvariant(c));
            }
            else if (word.Length > 0)
            {
                if (word.Length > 1 && !terms.Contains(word.ToString()))
                {
                    terms.Add(word.ToString());
                }

                word.Clear();
            }
        }

        return [.. terms.Take(32)];
    }
}

/// <summary>
/// The knowledge a chat turn gets: the best <see cref="KnowledgeOptions.PromptPassages"/> passages
/// for its message that fit in <see cref="KnowledgeOptions.PromptTokens"/> tokens, best first.
/// </summary>
internal sealed class KnowledgeLookup(KnowledgeRetriever retriever, Microsoft.Extensions.Options.IOptionsMonitor<KnowledgeOptions> options) : Grains.Knowledge.IKnowledgeLookup
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<Grains.Knowledge.KnowledgePassage>> FindAsync(Guid workspaceId, string question, CancellationToken cancellationToken)
    {
        var settings = options.CurrentValue;
        var hits = await retriever.RetrieveAsync(workspaceId, question, settings.PromptPassages, RetrievalMode.Hybrid, cancellationToken);
        var passages = new List<Grains.Knowledge.KnowledgePassage>(hits.Count);
        var tokens = 0;
        foreach (var hit in hits)
        {
            if (tokens + hit.Chunk.Tokens > settings.PromptTokens)
            {
                break;
            }

            tokens += hit.Chunk.Tokens;
            passages.Add(new Grains.Knowledge.KnowledgePassage(hit.Chunk.SourceId, hit.Chunk.SourceName, hit.Chunk.Url, hit.Chunk.Heading, hit.Chunk.Text));
        }

        return passages;
    }
}

using LuluClaw.Grains.Knowledge;
using LuluClaw.Grains.Storage;

namespace LuluClaw.Silo.Knowledge;

/// <summary>How retrieval ranks: both rankings fused (the default), or one of them alone (to measure what fusion adds).</summary>
public enum RetrievalMode
{
    /// <summary>Embeddings and full text: each chunk's cosine, plus a bonus where the full-text ranking found it.</summary>
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
/// vectors), each giving <see cref="Candidates"/> candidates, fused as the chunk's cosine plus
/// <see cref="TextBonus"/> × (<see cref="RankConstant"/> + 1) / (<see cref="RankConstant"/> + full-text rank)
/// where full text found it. Everything is read from the database on every call, so a source deleted
/// on any silo is out of the next retrieval everywhere.
/// </summary>
/// <remarks>
/// Why not reciprocal rank fusion of both rankings: on the quality corpus
/// (<c>tests/WebApi.Tests/Knowledge</c>, <c>docs/benchmarks.md</c>) it was worse than the embeddings
/// alone (hit@3 0.857 against 0.886), because questions that say it in other words make the word
/// ranking weak (0.63) and reciprocal rank gives it an equal vote. Adding a bounded bonus to the cosine
/// keeps the embedding's judgement and lets the question's exact words (an error code, a part's name)
/// decide between chunks of similar meaning: 0.914, and the same for any bonus from 0.02 to 0.12.
/// </remarks>
internal sealed class KnowledgeRetriever(IKnowledgeStore store, ITextEmbedder embedder)
{
    /// <summary>How many candidates each ranking gives before fusing.</summary>
    public const int Candidates = 50;

    /// <summary>How slowly the full-text bonus fades with rank: the first match gets all of <see cref="TextBonus"/>, the 50th about half.</summary>
    public const int RankConstant = 60;

    /// <summary>What being the full-text ranking's first match adds to a chunk's cosine similarity.</summary>
    public const double TextBonus = 0.05;

    /// <summary>The <paramref name="count"/> best chunks for <paramref name="question"/>, best first.</summary>
    public async Task<IReadOnlyList<KnowledgeHit>> RetrieveAsync(
        Guid workspaceId, string question, int count, RetrievalMode mode = RetrievalMode.Hybrid, CancellationToken cancellationToken = default)
    {
        var vectors = await store.GetEmbeddingsAsync(workspaceId, cancellationToken);
        if (vectors.Count == 0)
        {
            return []; // no ready knowledge: nothing to embed the question for
        }

        var query = embedder.Embed([question], cancellationToken)[0];
        var similarity = vectors.ToDictionary(v => v.ChunkId, v => Dot(query, v.Embedding));
        var byVector = mode == RetrievalMode.TextOnly
            ? []
            : similarity.OrderByDescending(p => p.Value).ThenBy(p => p.Key).Take(Candidates).Select(p => p.Key).ToList();
        var byText = mode == RetrievalMode.VectorOnly ? [] : await store.SearchTextAsync(workspaceId, Terms(question), Candidates, cancellationToken);

        var scores = new Dictionary<long, (double Score, int? Text, int? Vector)>();
        for (var rank = 0; rank < byVector.Count; rank++)
        {
            scores[byVector[rank]] = (similarity[byVector[rank]], null, rank + 1);
        }

        for (var rank = 0; rank < byText.Count; rank++)
        {
            var cosine = mode == RetrievalMode.TextOnly ? 0 : similarity.GetValueOrDefault(byText[rank]);
            var bonus = TextBonus * (RankConstant + 1) / (RankConstant + rank + 1);
            scores[byText[rank]] = (cosine + bonus, rank + 1, scores.GetValueOrDefault(byText[rank]).Vector);
        }

        var best = scores.OrderByDescending(p => p.Value.Score).ThenBy(p => p.Key).Take(count).ToList();
        var chunks = await store.GetRetrievedChunksAsync(workspaceId, [.. best.Select(p => p.Key)], cancellationToken);
        var found = chunks.ToDictionary(c => c.ChunkId);
        return [.. best.Where(p => found.ContainsKey(p.Key))
            .Select(p => new KnowledgeHit(found[p.Key], p.Value.Score, similarity.GetValueOrDefault(p.Key), p.Value.Text, p.Value.Vector))];
    }

    /// <summary>
    /// English function words, left out of the full-text query: the query is an OR of the question's
    /// words, and a chunk that shares only "how", "does" and "my" with it would otherwise outrank one
    /// that shares the one word that matters (the quality corpus showed it: short FAQ answers beginning
    /// "Why does my coffee" came first for questions they do not answer). PostgreSQL's
    /// <c>to_tsquery('english', …)</c> drops such words itself; this makes SQLite do the same.
    /// </summary>
    private static readonly HashSet<string> StopWords = new(StringComparer.Ordinal)
    {
        "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been",
        "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "don", "down", "during", "each",
        "else", "even", "ever", "few", "for", "from", "get", "gets", "got", "had", "has", "have", "having", "he", "her", "here",
        "hers", "him", "his", "how", "if", "in", "into", "is", "isn", "it", "its", "itself", "just", "let", "like", "ll", "may",
        "me", "might", "more", "most", "much", "must", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
        "one", "only", "or", "other", "our", "ours", "out", "over", "own", "please", "same", "shall", "she", "should", "so",
        "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those",
        "through", "to", "too", "under", "until", "up", "us", "very", "was", "wasn", "we", "were", "what", "when", "where",
        "which", "while", "who", "whom", "why", "will", "with", "won", "would", "you", "your", "yours", "yourself",
    };

    /// <summary>The question's words for full-text search: letters and digits, lower case, each once, without <see cref="StopWords"/>.</summary>
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
                if (word.Length > 1 && !StopWords.Contains(word.ToString()) && !terms.Contains(word.ToString()))
                {
                    terms.Add(word.ToString());
                }

                word.Clear();
            }
        }

        return [.. terms.Take(32)];
    }

    private static float Dot(float[] a, float[] b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
}

/// <summary>
/// The knowledge a chat turn gets: the best <see cref="KnowledgeOptions.PromptPassages"/> passages
/// for its message that fit in <see cref="KnowledgeOptions.PromptTokens"/> tokens, best first; or,
/// in a workspace that has knowledge, the evidence gate's answer when no passage retrieved comes as
/// close to the question as the bot's threshold asks (cosine similarity of the embeddings: the fused
/// score ranks, but only the similarity says how near the best passage is).
/// </summary>
internal sealed class KnowledgeLookup(KnowledgeRetriever retriever, Microsoft.Extensions.Options.IOptionsMonitor<KnowledgeOptions> options) : IKnowledgeLookup
{
    /// <inheritdoc />
    public async Task<KnowledgeFindings> FindAsync(Guid workspaceId, string question, BotKnowledge bot, CancellationToken cancellationToken)
    {
        var settings = options.CurrentValue;
        var hits = await retriever.RetrieveAsync(workspaceId, question, settings.PromptPassages, RetrievalMode.Hybrid, cancellationToken);
        if (hits.Count == 0)
        {
            return KnowledgeFindings.None; // no ready knowledge: the bot answers as it would without
        }

        if (hits.Max(h => h.Similarity) < (bot.Threshold ?? settings.EvidenceThreshold))
        {
            return new KnowledgeFindings([], bot.Fallback ?? settings.FallbackAnswer);
        }

        var passages = new List<KnowledgePassage>(hits.Count);
        var tokens = 0;
        foreach (var hit in hits)
        {
            if (tokens + hit.Chunk.Tokens > settings.PromptTokens)
            {
                break;
            }

            tokens += hit.Chunk.Tokens;
            passages.Add(new KnowledgePassage(hit.Chunk.ChunkId, hit.Chunk.SourceId, hit.Chunk.SourceName, hit.Chunk.Url, hit.Chunk.Heading, hit.Chunk.Text));
        }

        return new KnowledgeFindings(passages);
    }
}

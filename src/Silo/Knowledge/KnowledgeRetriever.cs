using LuluClaw.Grains.Knowledge;
using LuluClaw.Grains.Storage;

namespace LuluClaw.Silo.Knowledge;

/// <summary>How retrieval ranks: both rankings fused (the default), or one of them alone (to measure what fusion adds).</summary>
public enum RetrievalMode
{
    /// <summary>Embeddings and full text, fused by weighted reciprocal rank.</summary>
    Hybrid,
    /// <summary>Full-text ranking only.</summary>
    TextOnly,
    /// <summary>Embedding similarity only.</summary>
    VectorOnly,
}

/// <summary>A retrieved chunk, its fused score, its cosine similarity to the question, and its rank on each side (null where it was not a candidate).</summary>
public sealed record KnowledgeHit(RetrievedChunk Chunk, double Score, float Similarity, int? TextRank, int? VectorRank);

/// <summary>
/// Hybrid retrieval over a workspace's ingested knowledge (sources ready, or being ingested again and
/// answering from their last ingestion until it settles; not in error): the store's full-text ranking and the cosine
/// similarity of the question's embedding to every chunk's (brute force over the workspace's
/// vectors, held in memory by <see cref="KnowledgeVectorCache"/>, which checks the workspace's
/// sources in the database on every call), each giving <see cref="Candidates"/> candidates, fused by weighted reciprocal rank:
/// score = 1 / (<see cref="RankConstant"/> + embedding rank) + <see cref="TextWeight"/> / (<see cref="RankConstant"/> + full-text rank).
/// </summary>
/// <remarks>
/// Why these constants (the quality corpus, <c>tests/WebApi.Tests/Knowledge</c>; figures in
/// <c>docs/benchmarks.md</c>): plain reciprocal rank fusion (k = 60, equal votes) was worse than the
/// embeddings alone (hit@3 0.857 against 0.886), because questions that say it in other words make
/// the word ranking weak (0.63 alone), and an equal vote lets it push good chunks out of the top three.
/// With the word ranking at a quarter of the vote and k = 20 (so the first few ranks weigh more),
/// fusion reaches 0.914: the exact words (an error code, a part's name) then only decide between
/// chunks the embedding already ranks near each other. The plateau is narrow (k 15 to 25, weight
/// 0.15 to 0.3), so a new corpus may want other values.
/// </remarks>
internal sealed class KnowledgeRetriever(IKnowledgeStore store, KnowledgeVectorCache vectorCache, ITextEmbedder embedder)
{
    /// <summary>How many candidates each ranking gives before fusing.</summary>
    public const int Candidates = 50;

    /// <summary>Reciprocal rank fusion's constant: how much a rank past the first few still counts.</summary>
    public const int RankConstant = 20;

    /// <summary>The full-text ranking's vote against the embedding ranking's 1.</summary>
    public const double TextWeight = 0.25;

    /// <summary>The <paramref name="count"/> best chunks for <paramref name="question"/>, best first.</summary>
    public async Task<IReadOnlyList<KnowledgeHit>> RetrieveAsync(
        Guid workspaceId, string question, int count, RetrievalMode mode = RetrievalMode.Hybrid, CancellationToken cancellationToken = default)
    {
        var vectors = await vectorCache.GetAsync(workspaceId, cancellationToken);
        if (vectors.Count == 0)
        {
            return []; // no ingested knowledge: nothing to embed the question for
        }

        // The full-text search runs on another thread (SQLite's reads are synchronous) while this one
        // embeds the question and scans the vectors: a turn waits for the slower side, not for both.
        var textSearch = mode == RetrievalMode.VectorOnly
            ? Task.FromResult<IReadOnlyList<long>>([])
            : Task.Run(() => store.SearchTextAsync(workspaceId, Terms(question), Candidates, cancellationToken), cancellationToken);
        VectorScores similarity;
        IReadOnlyList<long> byVector;
        try
        {
            var query = embedder.Embed([question], cancellationToken)[0];
            similarity = vectors.Score(query);
            byVector = mode == RetrievalMode.TextOnly ? [] : similarity.Top(Candidates);
        }
        catch
        {
            await textSearch.ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false); // the search's own failure is not this one's
            throw;
        }

        var byText = await textSearch;

        var scores = new Dictionary<long, (double Score, int? Text, int? Vector)>();
        for (var rank = 0; rank < byVector.Count; rank++)
        {
            scores[byVector[rank]] = (1.0 / (RankConstant + rank + 1), null, rank + 1);
        }

        for (var rank = 0; rank < byText.Count; rank++)
        {
            var (score, _, vector) = scores.GetValueOrDefault(byText[rank]);
            scores[byText[rank]] = (score + TextWeight / (RankConstant + rank + 1), rank + 1, vector);
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

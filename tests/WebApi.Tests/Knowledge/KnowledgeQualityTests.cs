using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo.Knowledge;
using LuluClaw.Tests;
using Microsoft.Extensions.DependencyInjection;
using UglyToad.PdfPig.Content;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace LuluClaw.WebApi.Tests.Knowledge;

/// <summary>
/// Retrieval quality, measured (issue 17): a corpus on one made-up product (the Emberline Roastmate R2
/// home coffee roaster, <c>Knowledge/Corpus</c>) ingested through the routes, and questions whose
/// answers sit in known chunks, asked in each <see cref="RetrievalMode"/>. A question is a hit when
/// one of the three retrieved chunks is of the named source and contains the named phrase: a test of
/// where the answer is, not of how the text was cut into chunks.
/// </summary>
/// <remarks>The figures are written to the test output and recorded in <c>docs/benchmarks.md</c>.</remarks>
public sealed class KnowledgeQualityTests(KnowledgeQualityTests.Corpus corpus) : IClassFixture<KnowledgeQualityTests.Corpus>
{
    /// <summary>How many chunks a question gets, as in hit@3.</summary>
    private const int Top = 3;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheCorpus_IsAllIngested_AndEveryAnswerPhrase_IsInAChunkOfItsSource()
    {
        var store = corpus.App.Services.GetRequiredService<IKnowledgeStore>();
        var chunks = new Dictionary<string, IReadOnlyList<KnowledgeChunkRecord>>();
        foreach (var (name, id) in corpus.Sources)
        {
            chunks[name] = await store.GetChunksAsync(id, Ct);
        }

        Assert.Equal(corpus.SitePages, chunks[Corpus.Website].Select(c => c.PageKey).Distinct().Count()); // the crawl reached every page
        Assert.True(corpus.Questions.Covered.Count >= 40, $"{corpus.Questions.Covered.Count} covered questions");
        Assert.True(corpus.Questions.Uncovered.Count >= 10, $"{corpus.Questions.Uncovered.Count} uncovered questions");
        var missing = corpus.Questions.Covered.SelectMany(q => q.Answers)
            .Where(a => !chunks[a.Source].Any(c => Contains(c.Text, a.Phrase)))
            .Select(a => $"{a.Source}: {a.Phrase}").ToList();
        Assert.Empty(missing);
    }

    [Fact]
    public async Task Hybrid_HasTheAnswerInItsTopThree_ForNineQuestionsInTen_AndBeatsFullTextAndEmbeddingsAlone()
    {
        var retriever = corpus.App.Services.GetRequiredService<KnowledgeRetriever>();
        var output = TestContext.Current.TestOutputHelper!;
        var hitRate = new Dictionary<RetrievalMode, double>();
        var bestSimilarity = new List<float>();
        var covered = new List<(float Similarity, string Question)>();
        foreach (var mode in Enum.GetValues<RetrievalMode>())
        {
            var hits = 0;
            foreach (var question in corpus.Questions.Covered)
            {
                var found = await retriever.RetrieveAsync(corpus.WorkspaceId, question.Question, Top, mode, Ct);
                if (found.Any(h => question.Answers.Any(a => a.Source == h.Chunk.SourceName && Contains(h.Chunk.Text, a.Phrase))))
                {
                    hits++;
                }
                else
                {
                    output.WriteLine($"{mode} miss: {question.Question} -> {string.Join(" | ", found.Select(h => $"{h.Chunk.SourceName}/{h.Chunk.Heading}"))}");
                }

                if (mode == RetrievalMode.Hybrid)
                {
                    bestSimilarity.Add(found.Count == 0 ? 0 : found.Max(h => h.Similarity));
                    covered.Add((bestSimilarity[^1], question.Question));
                }
            }

            hitRate[mode] = (double)hits / corpus.Questions.Covered.Count;
        }

        var uncovered = new List<float>();
        foreach (var question in corpus.Questions.Uncovered)
        {
            var found = await retriever.RetrieveAsync(corpus.WorkspaceId, question, Top, RetrievalMode.Hybrid, Ct);
            uncovered.Add(found.Count == 0 ? 0 : found.Max(h => h.Similarity));
        }

        output.WriteLine($"corpus: {corpus.SitePages} pages, 2 PDFs, 1 manual source; {corpus.ChunkCount} chunks; "
            + $"{corpus.Questions.Covered.Count} covered and {corpus.Questions.Uncovered.Count} uncovered questions");
        foreach (var (mode, rate) in hitRate)
        {
            output.WriteLine(Invariant($"hit@{Top} {mode}: {rate:F3}"));
        }

        // Calibration of the evidence gate: the best cosine among the hybrid top three, for questions the
        // corpus answers and for those it does not.
        var (threshold, coveredBelow, uncoveredAbove) = Separate(bestSimilarity, uncovered);
        output.WriteLine(Invariant($"best cosine, covered: min {bestSimilarity.Min():F3}, median {Median(bestSimilarity):F3}"));
        output.WriteLine(Invariant($"best cosine, uncovered: max {uncovered.Max():F3}, median {Median(uncovered):F3}"));
        output.WriteLine(Invariant($"threshold {threshold:F3}: {coveredBelow} covered below it, {uncoveredAbove} uncovered at or above it"));
        foreach (var at in new[] { 0.35f, 0.40f, 0.45f, 0.50f })
        {
            output.WriteLine(Invariant($"at {at:F2}: {bestSimilarity.Count(v => v < at)} covered below, {uncovered.Count(v => v >= at)} uncovered at or above"));
        }

        output.WriteLine("lowest covered: " + string.Join("; ", covered.OrderBy(c => c.Similarity).Take(5).Select(c => Invariant($"{c.Similarity:F3} {c.Question}"))));
        output.WriteLine("uncovered: " + string.Join("; ", corpus.Questions.Uncovered.Zip(uncovered, (q, s) => Invariant($"{s:F3} {q}"))));

        Assert.True(hitRate[RetrievalMode.Hybrid] >= 0.9, Invariant($"hybrid hit@{Top} {hitRate[RetrievalMode.Hybrid]:F3}"));
        Assert.True(hitRate[RetrievalMode.Hybrid] > hitRate[RetrievalMode.TextOnly],
            Invariant($"hybrid {hitRate[RetrievalMode.Hybrid]:F3} against full text alone {hitRate[RetrievalMode.TextOnly]:F3}"));
        Assert.True(hitRate[RetrievalMode.Hybrid] > hitRate[RetrievalMode.VectorOnly],
            Invariant($"hybrid {hitRate[RetrievalMode.Hybrid]:F3} against embeddings alone {hitRate[RetrievalMode.VectorOnly]:F3}"));
    }

    [Fact]
    public async Task TheDefaultEvidenceGate_LetsEveryCoveredQuestionThrough_AndStopsEveryOffTopicOne()
    {
        var lookup = corpus.App.Services.GetRequiredService<LuluClaw.Grains.Knowledge.IKnowledgeLookup>();
        var stopped = new List<string>();
        foreach (var question in corpus.Questions.Covered)
        {
            if ((await lookup.FindAsync(corpus.WorkspaceId, question.Question, BotKnowledge.Default, Ct)).GateAnswer is not null)
            {
                stopped.Add(question.Question);
            }
        }

        var through = new List<string>();
        foreach (var question in corpus.Questions.OffTopic)
        {
            if ((await lookup.FindAsync(corpus.WorkspaceId, question, BotKnowledge.Default, Ct)).GateAnswer is null)
            {
                through.Add(question);
            }
        }

        Assert.Empty(stopped);
        Assert.Empty(through);
        Assert.Equal(5, corpus.Questions.OffTopic.Count);
        Assert.All(corpus.Questions.OffTopic, q => Assert.Contains(q, corpus.Questions.Uncovered));
    }

    /// <summary>Whether <paramref name="text"/> holds <paramref name="phrase"/>, ignoring case and how whitespace runs (a PDF's line breaks).</summary>
    private static bool Contains(string text, string phrase) =>
        TextSpacing.Inline(text).Contains(TextSpacing.Inline(phrase), StringComparison.OrdinalIgnoreCase);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    private static float Median(List<float> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>The threshold (midway between two observed values) that misjudges the fewest questions, and how many of each side it misjudges.</summary>
    private static (float Threshold, int CoveredBelow, int UncoveredAbove) Separate(List<float> covered, List<float> uncovered)
    {
        var candidates = covered.Concat(uncovered).Order().Distinct().ToList();
        var best = (Threshold: 0f, CoveredBelow: 0, UncoveredAbove: uncovered.Count);
        for (var i = 1; i < candidates.Count; i++)
        {
            var threshold = (candidates[i - 1] + candidates[i]) / 2;
            var below = covered.Count(s => s < threshold);
            var above = uncovered.Count(s => s >= threshold);
            if (below + above < best.CoveredBelow + best.UncoveredAbove)
            {
                best = (threshold, below, above);
            }
        }

        return best;
    }

    /// <summary>Where an answer is: the source's name and a phrase the answering chunk contains.</summary>
    public sealed record Answer(string Source, string Phrase);

    /// <summary>A question the corpus answers, and where (any one of the answers counts).</summary>
    public sealed record CoveredQuestion(string Question, IReadOnlyList<Answer> Answers);

    /// <summary><c>Corpus/questions.json</c>: <see cref="OffTopic"/> are the uncovered questions that are not about the product at all.</summary>
    public sealed record QuestionSet(IReadOnlyList<CoveredQuestion> Covered, IReadOnlyList<string> Uncovered, [property: System.Text.Json.Serialization.JsonPropertyName("off_topic")] IReadOnlyList<string> OffTopic);

    /// <summary>
    /// The corpus ingested once for the class (the real embedder takes a few seconds): a help website
    /// served on 127.0.0.1 and crawled, two PDFs built from the corpus's text files, and a manual
    /// source of questions and answers, all in one workspace of an app on SQLite.
    /// </summary>
    public sealed class Corpus : IAsyncLifetime
    {
        public const string Website = "Roastmate Help Centre";

        private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Knowledge", "Corpus");

        private LocalSite? _site;

        public LuluClawApp App { get; private set; } = null!;

        public Guid WorkspaceId { get; private set; }

        /// <summary>Each source's id by its name.</summary>
        public Dictionary<string, string> Sources { get; } = [];

        public int SitePages { get; private set; }

        public int ChunkCount { get; private set; }

        public QuestionSet Questions { get; } =
            JsonSerializer.Deserialize<QuestionSet>(File.ReadAllText(Path.Combine(Folder, "questions.json")), JsonSerializerOptions.Web)!;

        public async ValueTask InitializeAsync()
        {
            var ct = TestContext.Current.CancellationToken;
            var site = _site = await LocalSite.StartAsync();
            var siteFolder = Path.Combine(Folder, "site");
            foreach (var file in Directory.GetFiles(siteFolder, "*.html", SearchOption.AllDirectories))
            {
                var path = "/" + Path.GetRelativePath(siteFolder, file).Replace('\\', '/');
                site.Page(path == "/index.html" ? "/" : path, await File.ReadAllTextAsync(file, ct));
                SitePages++;
            }

            App = await LuluClawApp.StartAsync(Provider.Sqlite, new Dictionary<string, string?>
            {
                ["Knowledge:RunInBackground"] = "false",
                ["Knowledge:AllowPrivateAddresses"] = "true",
            });
            var workspace = await App.CreateWorkspaceAsync();
            WorkspaceId = Guid.Parse(workspace.Id);
            using var client = workspace.Client();
            Sources[Website] = await Apis.KnowledgeRequests.CreateAsync(client, JsonContent.Create(new { type = "website", name = Website, url = site.BaseUrl.ToString() }));
            Sources["Advanced Roasting Guide"] = await Apis.KnowledgeRequests.CreateAsync(client, Apis.KnowledgeRequests.Upload("Advanced Roasting Guide", "advanced-roasting.pdf", Pdf("advanced-roasting-guide.txt")));
            Sources["Service Guide"] = await Apis.KnowledgeRequests.CreateAsync(client, Apis.KnowledgeRequests.Upload("Service Guide", "service-guide.pdf", Pdf("service-guide.txt")));
            var entries = JsonSerializer.Deserialize<JsonElement>(await File.ReadAllTextAsync(Path.Combine(Folder, "faq.json"), ct));
            Sources["Roastmate FAQ"] = await Apis.KnowledgeRequests.CreateAsync(client, JsonContent.Create(new { type = "manual", name = "Roastmate FAQ", entries }));

            var ingestion = App.Services.GetRequiredService<KnowledgeIngestion>();
            while (await ingestion.IngestNextAsync(ct))
            {
            }

            foreach (var (name, id) in Sources)
            {
                var source = await client.GetFromJsonAsync<JsonElement>($"/api/v1/knowledge-sources/{id}", ct);
                if (source.GetProperty("status").GetString() != "ready")
                {
                    throw new InvalidOperationException($"{name} was not ingested: {source}");
                }

                ChunkCount += source.GetProperty("chunk_count").GetInt32();
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (App is not null)
            {
                await App.DisposeAsync();
            }

            if (_site is not null)
            {
                await _site.DisposeAsync();
            }
        }

        /// <summary>
        /// A PDF of a corpus text file: its sections (between lines of <c>---</c>) each start a page, the
        /// first line as the page's title, paragraphs wrapped to the page's width.
        /// </summary>
        private static byte[] Pdf(string textFile)
        {
            const double Size = 11, Leading = 15, Left = 56, Top = 780, Bottom = 60;
            const int Width = 88; // characters a Helvetica line of 11 points holds between the margins
            var builder = new PdfDocumentBuilder();
            var font = builder.AddStandard14Font(Standard14Font.Helvetica);
            var text = File.ReadAllText(Path.Combine(Folder, textFile)).ReplaceLineEndings("\n");
            foreach (var section in text.Split("\n---\n"))
            {
                var page = builder.AddPage(PageSize.A4);
                var y = Top;
                foreach (var paragraph in section.Trim().Split('\n'))
                {
                    foreach (var line in Wrap(paragraph, Width))
                    {
                        if (y < Bottom)
                        {
                            page = builder.AddPage(PageSize.A4);
                            y = Top;
                        }

                        page.AddText(line, Size, new PdfPoint(Left, y), font);
                        y -= Leading;
                    }

                    y -= Leading / 2; // a paragraph's gap
                }
            }

            return builder.Build();
        }

        private static IEnumerable<string> Wrap(string paragraph, int width)
        {
            var line = new StringBuilder();
            foreach (var word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.Length > 0 && line.Length + 1 + word.Length > width)
                {
                    yield return line.ToString();
                    line.Clear();
                }

                line.Append(line.Length > 0 ? " " : "").Append(word);
            }

            if (line.Length > 0)
            {
                yield return line.ToString();
            }
        }
    }
}

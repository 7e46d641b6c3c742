using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LuluClaw.Bench.Knowledge;
using LuluClaw.Grains.Storage;
using LuluClaw.Silo;
using LuluClaw.Silo.Hosting;
using LuluClaw.Silo.Knowledge;
using LuluClaw.Silo.Storage;
using LuluClaw.WebApi;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

// Knowledge at scale, in process, with LuluClaw's real services and HTTP host (AddLuluClaw,
// UseOrleans with ConfigureLuluClaw, MapLuluClaw on Kestrel at 127.0.0.1), the echo model, on a
// fresh SQLite file or a fresh PostgreSQL database:
// 1. ingestion: a generated website of --pages pages (realistic paragraphs, a tree of links three
//    deep) served by Kestrel on 127.0.0.1; one website source made through the knowledge route, then
//    ingested by the silo's own KnowledgeIngestion (the real crawler through the URL guard, the
//    chunker, the MiniLM embedder, the store) until nothing is due: pages/s and chunks/s;
// 2. seeding: one workspace gets --chunks chunks (generated English-like text, a Zipf vocabulary)
//    through the store (InsertSourceAsync, ClaimDueSourceAsync, CompleteIngestionAsync), in sources
//    of 500 chunks; the first --real-vectors chunks get MiniLM embeddings, the rest random unit
//    vectors (brute force costs the same whatever the values);
// 3. turns: POST /api/gateway/chat over HTTP, one at a time, alternating a workspace with the
//    knowledge and one without any, the same questions in both; p50/p95/p99 of each, after a warm-up;
// 4. retrieval alone: KnowledgeRetriever.RetrieveAsync, and its parts (the cache's check, the
//    question's embedding, the vector scan, the full-text search), p50/p95/p99.
// Prints RESULT lines (key=value) on stdout, progress on stderr.
// Usage: LuluClaw.Bench.Knowledge --provider sqlite|postgres [--connection CONN] [--pages 1000]
//        [--chunks 100000] [--real-vectors 1000] [--turns 400] [--retrievals 300] [--keep]
// --keep leaves the SQLite file (its path on stderr) for looking into the queries afterwards.
var provider = Str("--provider", "sqlite");
var pages = Arg("--pages", 1000);
var chunkCount = Arg("--chunks", 100_000);
var realVectors = Arg("--real-vectors", 1000);
var turns = Arg("--turns", 400);
var retrievals = Arg("--retrievals", 300);
var keepFiles = args.Contains("--keep");
var ct = CancellationToken.None;
const string AdminToken = "bench-knowledge-admin";

var dir = Directory.CreateTempSubdirectory("luluclaw-bench-knowledge-");
try
{
    var port = FreePort();
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], EnvironmentName = "Production", ContentRootPath = AppContext.BaseDirectory });
    builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
    builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Storage:Provider"] = provider,
        ["ConnectionStrings:LuluClaw"] = provider == "postgres"
            ? Str("--connection", null) ?? throw new ArgumentException("--connection is needed with --provider postgres")
            : $"Data Source={Path.Combine(dir.FullName, "luluclaw.db")}",
        ["Demo:Seed"] = "false",
        ["Admin:Token"] = AdminToken,
        ["Llm:Provider"] = "echo",
        ["Plans:Key:bench:RequestsPerMinute"] = "",
        ["Plans:Key:bench:RequestsPerHour"] = "",
        ["Plans:Key:bench:RequestsPerDay"] = "",
        ["Knowledge:RunInBackground"] = "false",
        ["Knowledge:AllowPrivateAddresses"] = "true",
        ["Knowledge:CrawlSeconds"] = "3600",
        // The generated questions share words with the chunks but little meaning (random vectors,
        // made-up words): with the gate at 0 every turn takes its passages to the model, the full cost.
        ["Knowledge:EvidenceThreshold"] = "0",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Cluster:SiloPort"] = FreePort().ToString(CultureInfo.InvariantCulture),
        ["Cluster:GatewayPort"] = FreePort().ToString(CultureInfo.InvariantCulture),
    });
    builder.Services.AddLuluClaw(builder.Configuration);
    builder.UseOrleans(silo => silo.ConfigureLuluClaw(builder.Configuration));
    await using var app = builder.Build();
    await app.Services.GetRequiredService<SchemaMigrator>().MigrateAsync(ct);
    app.MapLuluClaw();
    await app.StartAsync(ct);
    using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(5) };
    var store = app.Services.GetRequiredService<IKnowledgeStore>();
    var embedder = app.Services.GetRequiredService<ITextEmbedder>();
    var text = new TextMaker(17);

    // :: Step 1: ingestion of a generated website.
    if (pages > 0)
    {
        await using var site = await Site.StartAsync(pages, text);
        var (ingestWs, siteKey) = await WorkspaceAsync("ingest");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/knowledge-sources")
        {
            Content = JsonContent.Create(new { type = "website", name = "bench site", url = site.BaseUrl, max_pages = pages, max_depth = 3 }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", siteKey);
        var created = await http.SendAsync(request, ct);
        created.EnsureSuccessStatusCode();
        var sourceId = (await created.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetString()!;
        Log($"ingest: {pages} pages from {site.BaseUrl}");
        var ingestion = app.Services.GetRequiredService<KnowledgeIngestion>();
        var clock = Stopwatch.StartNew();
        while (await ingestion.IngestNextAsync(ct))
        {
        }

        var seconds = clock.Elapsed.TotalSeconds;
        var source = await store.GetSourceAsync(ingestWs, sourceId, ct)
            ?? throw new InvalidOperationException("the website source is gone");
        Log($"ingest: {source.Status} {source.StatusReason}, {site.PagesServed} pages served, {source.ChunkCount} chunks in {seconds:F1}s");
        Result("ingest", $"status={source.Status} pages={site.PagesServed} chunks={source.ChunkCount} seconds={F(seconds)} " +
            $"pages_per_s={F(site.PagesServed / seconds)} chunks_per_s={F(source.ChunkCount / seconds)} words_per_page={site.WordsPerPage}");
        if (source.Status != "ready")
        {
            return 1;
        }
    }

    if (chunkCount == 0)
    {
        await app.StopAsync(ct);
        return 0;
    }

    // :: Step 2: one workspace with chunkCount chunks, one without knowledge.
    var (knowledgeWs, knowledgeKey) = await WorkspaceAsync("knowledge");
    var (emptyWs, emptyKey) = await WorkspaceAsync("empty");
    var seeded = Stopwatch.StartNew();
    const int PerSource = 500, PerPage = 10;
    var random = new Random(42);
    var written = 0;
    for (var s = 0; written < chunkCount; s++)
    {
        var now = DateTimeOffset.UtcNow;
        var id = $"ks_bench{s:D5}";
        await store.InsertSourceAsync(new KnowledgeSourceRecord(id, knowledgeWs, $"Handbook part {s}", "website", $"https://handbook.example/{s}/", "pending", null, 0,
            "{}", 1, now, now, null, null), null, ct);
        var claim = await store.ClaimDueSourceAsync("bench", now, now.AddHours(1), ct);
        if (claim?.Source.Id != id)
        {
            throw new InvalidOperationException($"claimed {claim?.Source.Id} instead of {id}");
        }

        var count = Math.Min(PerSource, chunkCount - written);
        var texts = Enumerable.Range(0, count).Select(_ => text.Paragraph(random, 130, 190)).ToArray();
        var real = Math.Clamp(realVectors - written, 0, count);
        var vectors = real > 0 ? embedder.Embed(texts[..real], ct) : [];
        var updates = new List<KnowledgePageUpdate>();
        for (var p = 0; p * PerPage < count; p++)
        {
            var url = $"https://handbook.example/{s}/page-{p}";
            var title = text.Title(random);
            var pageChunks = Enumerable.Range(p * PerPage, Math.Min(PerPage, count - (p * PerPage)))
                .Select(i => new KnowledgeChunkRecord(url, i - (p * PerPage), texts[i], 200, title, text.Title(random), i < real ? vectors[i] : RandomUnit(random, 384)))
                .ToList();
            updates.Add(new KnowledgePageUpdate(new KnowledgePageRecord(url, title, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(url))), null, null), pageChunks));
        }

        if (!await store.CompleteIngestionAsync(new IngestionOutcome(id, claim.Source.Version, "bench", "ready", null, updates, null), now, ct))
        {
            throw new InvalidOperationException($"{id} did not settle");
        }

        written += count;
        if (s % 40 == 0)
        {
            Log($"seed: {written} chunks, {seeded.Elapsed.TotalSeconds:F0}s");
        }
    }

    Result("seed", $"chunks={written} sources={(written + PerSource - 1) / PerSource} real_vectors={Math.Min(realVectors, written)} seconds={F(seeded.Elapsed.TotalSeconds)} " +
        $"chunks_per_s={F(written / seeded.Elapsed.TotalSeconds)}");

    // :: Step 3: chat turns, the workspace with knowledge and the one without, alternating.
    var questions = Enumerable.Range(0, 64).Select(_ => text.Question(random)).ToArray();
    Log($"turns: {turns} per workspace after a warm-up, e.g. \"{questions[0]}\"");
    var retriever = app.Services.GetRequiredService<KnowledgeRetriever>();
    var firstLoad = Stopwatch.StartNew();
    await retriever.RetrieveAsync(knowledgeWs, questions[0], 5, cancellationToken: ct); // the cache's first load, reported on its own
    var loadSeconds = firstLoad.Elapsed.TotalSeconds;
    var withKnowledge = new List<double>();
    var without = new List<double>();
    var warmup = Math.Max(50, turns / 4);
    for (var i = 0; i < warmup + turns; i++)
    {
        var question = questions[i % questions.Length];
        var session = $"t{i / 10}";
        // The order alternates, so that neither workspace's turns always follow the other's.
        var first = i % 2 == 0;
        var a = await TurnAsync(first ? knowledgeKey : emptyKey, question, session);
        var b = await TurnAsync(first ? emptyKey : knowledgeKey, question, session);
        if (i >= warmup)
        {
            withKnowledge.Add(first ? a : b);
            without.Add(first ? b : a);
        }
    }

    var (k50, k95, k99) = Percentiles(withKnowledge);
    var (e50, e95, e99) = Percentiles(without);
    Log($"turns: with knowledge p50 {k50:F2} p95 {k95:F2} p99 {k99:F2} ms; without p50 {e50:F2} p95 {e95:F2} p99 {e99:F2} ms; added at p95 {k95 - e95:F2} ms");
    Result("turns", $"turns={turns} chunks={written} knowledge_p50={F(k50)} knowledge_p95={F(k95)} knowledge_p99={F(k99)} " +
        $"empty_p50={F(e50)} empty_p95={F(e95)} empty_p99={F(e99)} added_p50={F(k50 - e50)} added_p95={F(k95 - e95)} first_load_s={F(loadSeconds)}");

    // :: Step 4: retrieval alone, and its parts.
    var cache = app.Services.GetRequiredService<KnowledgeVectorCache>();
    var parts = new Dictionary<string, List<double>> { ["retrieve"] = [], ["cache_check"] = [], ["embed"] = [], ["vector_top50"] = [], ["text_top50"] = [] };
    for (var i = 0; i < warmup + retrievals; i++)
    {
        var question = questions[i % questions.Length];
        var keep = i >= warmup;
        var watch = Stopwatch.StartNew();
        await retriever.RetrieveAsync(knowledgeWs, question, 5, cancellationToken: ct);
        Add("retrieve", watch);
        watch.Restart();
        var vectors = await cache.GetAsync(knowledgeWs, ct);
        Add("cache_check", watch);
        watch.Restart();
        var query = embedder.Embed([question], ct)[0];
        Add("embed", watch);
        watch.Restart();
        vectors.Score(query).Top(KnowledgeRetriever.Candidates);
        Add("vector_top50", watch);
        watch.Restart();
        await store.SearchTextAsync(knowledgeWs, KnowledgeRetriever.Terms(question), KnowledgeRetriever.Candidates, ct);
        Add("text_top50", watch);

        void Add(string part, Stopwatch w)
        {
            if (keep)
            {
                parts[part].Add(w.Elapsed.TotalMilliseconds);
            }
        }
    }

    foreach (var (part, times) in parts)
    {
        var (p50, p95, p99) = Percentiles(times);
        Log($"{part}: p50 {p50:F2} p95 {p95:F2} p99 {p99:F2} ms");
        Result("retrieval", $"part={part} n={times.Count} p50={F(p50)} p95={F(p95)} p99={F(p99)}");
    }

    Result("cache", $"bytes={cache.Bytes} chunks={written}");
    await app.StopAsync(ct);
    return 0;

    async Task<double> TurnAsync(string key, string message, string session)
    {
        using var turn = new HttpRequestMessage(HttpMethod.Post, "/api/gateway/chat") { Content = JsonContent.Create(new { message, session_id = session }) };
        turn.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var watch = Stopwatch.StartNew();
        using var response = await http.SendAsync(turn, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        var elapsed = watch.Elapsed.TotalMilliseconds;
        if (response.StatusCode != HttpStatusCode.OK || !body.Contains("Echo:", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"a turn answered {(int)response.StatusCode}: {body}");
        }

        return elapsed;
    }

    // A workspace (plan byok, a billion credits) with a key of the unlimited plan "bench", through the admin API.
    async Task<(Guid Id, string Key)> WorkspaceAsync(string name)
    {
        using var admin = new HttpRequestMessage(HttpMethod.Post, "/api/admin/workspaces") { Content = JsonContent.Create(new { name, plan = "byok", credits = 1_000_000_000 }) };
        admin.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        var workspace = await (await http.SendAsync(admin, ct)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(ct);
        var id = workspace.GetProperty("id").GetString()!;
        using var keyRequest = new HttpRequestMessage(HttpMethod.Post, $"/api/admin/workspaces/{id}/keys") { Content = JsonContent.Create(new { scopes = new[] { "chat", "knowledge" }, plan = "bench" }) };
        keyRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        var key = await (await http.SendAsync(keyRequest, ct)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>(ct);
        return (Guid.Parse(id), key.GetProperty("key").GetString()!);
    }
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    Npgsql.NpgsqlConnection.ClearAllPools();
    if (keepFiles)
    {
        Log($"kept {dir.FullName}");
    }
    else
    {
        dir.Delete(recursive: true);
    }
}

static float[] RandomUnit(Random random, int dimensions)
{
    var vector = new float[dimensions];
    for (var i = 0; i < dimensions; i++)
    {
        vector[i] = (float)(random.NextDouble() - 0.5);
    }

    System.Numerics.Tensors.TensorPrimitives.Divide(vector, System.Numerics.Tensors.TensorPrimitives.Norm(vector), vector);
    return vector;
}

static (double P50, double P95, double P99) Percentiles(List<double> values)
{
    var sorted = values.Order().ToArray();
    return (At(0.50), At(0.95), At(0.99));

    double At(double q) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}

static string F(double value) => value.ToString("F2", CultureInfo.InvariantCulture);

static void Log(string line) => Console.Error.WriteLine(line);

static void Result(string kind, string fields) => Console.WriteLine($"RESULT kind={kind} {fields}");

static int FreePort()
{
    using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

int Arg(string name, int fallback) => int.TryParse(Str(name, null), out var value) ? value : fallback;

string? Str(string name, string? fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

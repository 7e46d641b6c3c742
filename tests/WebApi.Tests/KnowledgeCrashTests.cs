using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Dapper;
using LuluClaw.Tests;
using Microsoft.AspNetCore.Http;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// Knowledge ingestion across real processes (issue 17, "cluster and durability"): a website crawl
/// whose silo is killed with SIGKILL is claimed again once its lease runs out and settles once, with
/// each page's chunks once; a re-crawl killed the same way leaves the source answering from its last
/// crawl until the new one settles; in a cluster of two silos on one PostgreSQL database a source is
/// crawled by one silo only, even while a page holds the crawl past the first lease, and a source
/// deleted through one silo is gone from the other's retrieval at once.
/// </summary>
/// <remarks>
/// Leases are 4 s and polls 0.3 s, so a test waits seconds, not the default minute, for a dead silo's
/// lease. A held page is a barrier, not a delay; the waits poll a state under an overall limit.
/// </remarks>
public sealed class KnowledgeCrashTests : IDisposable
{
    private const string LeaseSeconds = "4";
    private const string PollSeconds = "0.3";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private static readonly string[] PagePaths = ["/", "/alpha", "/bravo", "/charlie", "/delta"];

    private readonly List<string> _folders = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        foreach (var folder in _folders)
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task KillNine_MidCrawl_SourceIsClaimedAgainAfterItsLease_AndReadyWithEachPagesChunksOnce()
    {
        var folder = NewFolder();
        await using var site = await LocalSite.StartAsync();
        var held = new Held(site, "/charlie");
        held.Hold();
        var settings = Settings(new Dictionary<string, string?>());
        string key, sourceId;

        // :: Step 1: the crawl is under way (its fourth page held open) when the silo running it is killed.
        using (var first = await ServerProcess.StartAsync(folder, Ct, settings))
        {
            (_, key) = await first.CreateWorkspaceAsync("Crash", "starter", 100, Ct);
            using var client = first.Client(key);
            sourceId = await CreateWebsiteAsync(client, site);
            await held.Requested.WaitAsync(Patience, Ct);
            Assert.Equal("crawling", (await SourceAsync(client, sourceId)).GetProperty("status").GetString());
            first.KillNine();
        }

        var beforeKill = site.Requests;
        var lease = await SqliteLeaseAsync(folder, sourceId);
        Assert.Equal("crawling", lease.Status);
        Assert.NotNull(lease.Owner);
        Assert.DoesNotContain("/delta", beforeKill); // killed mid-crawl: the page after the held one was never asked for
        Assert.Empty(await SqliteChunksAsync(folder, sourceId)); // nothing of the cut crawl was written
        held.Release();

        // :: Step 2: a new process on the same database takes the source over once the dead silo's lease runs out.
        using var second = await ServerProcess.StartAsync(folder, Ct, settings);
        using var secondClient = second.Client(key);
        var source = await SettledAsync(secondClient, sourceId, second);
        Assert.Equal("ready", source.GetProperty("status").GetString());

        var again = site.Requests.Skip(beforeKill.Count).ToArray();
        Assert.Equal(["/robots.txt", .. PagePaths], again); // every page read again, each once
        Assert.True(held.FirstRequestAfterRelease >= DateTimeOffset.FromUnixTimeMilliseconds(lease.Until!.Value),
            $"the source was claimed again at {held.FirstRequestAfterRelease:O}, before the dead silo's lease ran out at "
            + $"{DateTimeOffset.FromUnixTimeMilliseconds(lease.Until!.Value):O}");

        // :: Step 3: each page's chunk once, as many as a clean crawl of the same site gives.
        var chunks = await SqliteChunksAsync(folder, sourceId);
        Assert.Equal(PagePaths.Select(p => new Uri(site.BaseUrl, p).AbsoluteUri).Order(StringComparer.Ordinal), chunks.Select(c => c.PageKey).Order(StringComparer.Ordinal));
        Assert.Equal(chunks.Count, chunks.Distinct().Count());
        Assert.Equal(chunks.Count, source.GetProperty("chunk_count").GetInt32());
        var clean = await SettledAsync(secondClient, await CreateWebsiteAsync(secondClient, site), second);
        Assert.Equal(("ready", chunks.Count), (clean.GetProperty("status").GetString(), clean.GetProperty("chunk_count").GetInt32()));
        var settled = await SqliteLeaseAsync(folder, sourceId);
        Assert.Equal(("ready", null, null), (settled.Status, settled.Owner, settled.Until));
    }

    [Fact]
    public async Task TwoSilosOnePostgres_SourceIsCrawledOnce_PastItsFirstLease_AndADeleteOnOneLeavesTheOthersRetrievalAtOnce()
    {
        await using var postgres = await TestPostgres.CreateAsync();
        await using var stub = await StubModelServer.StartAsync(Ct);
        await using var site = await LocalSite.StartAsync();
        var held = new Held(site, "/charlie");
        held.Hold();
        var settings = Settings(new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "postgres",
            ["ConnectionStrings:LuluClaw"] = postgres.ConnectionString,
            ["Llm:OpenAI:BaseUrl"] = stub.OpenAIBaseUrl.ToString(),
            ["Knowledge:CrawlRequestSeconds"] = "120", // the held page outlasts the lease, not the request's own limit
        });
        var folders = new[] { NewFolder(), NewFolder() };
        var nodes = await Task.WhenAll(folders.Select(f => ServerProcess.StartAsync(f, Ct, settings)));
        using var a = nodes[0];
        using var b = nodes[1];
        var (_, key) = await a.CreateWorkspaceAsync("Cluster", "starter", 100, Ct);
        using var onA = a.Client(key);
        using var onB = b.Client(key);
        await using var db = new NpgsqlConnection(postgres.ConnectionString);

        // :: Step 1: one silo crawls; the other, polling all along, does not take the source while the first renews its lease.
        var sourceId = await CreateWebsiteAsync(onA, site);
        await held.Requested.WaitAsync(Patience, Ct);
        var claimed = await PostgresLeaseAsync(db, sourceId);
        Assert.Equal("crawling", claimed.Status);
        var waited = Stopwatch.StartNew();
        LeaseRow now;
        while ((now = await PostgresLeaseAsync(db, sourceId)).Until <= claimed.Until + 1000
            || DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() <= claimed.Until + 1000)
        {
            Assert.True(waited.Elapsed < Patience, "the lease was never renewed past its first term");
            Assert.Equal(("crawling", claimed.Owner), (now.Status, now.Owner));
            await Task.Delay(100, Ct);
        }

        Assert.Equal(("crawling", claimed.Owner), (now.Status, now.Owner)); // a second past the first lease's end, still the first silo's
        held.Release();
        var source = await SettledAsync(onB, sourceId, b);
        Assert.Equal("ready", source.GetProperty("status").GetString());
        Assert.Equal(["/robots.txt", .. PagePaths], site.Requests); // every page requested once across both silos
        Assert.Equal(PagePaths.Length, source.GetProperty("chunk_count").GetInt32());
        Assert.Equal(PagePaths.Length, await db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM knowledge_chunks WHERE source_id = @sourceId", new { sourceId }));

        // :: Step 2: B's chat turns get the source's passages until A deletes it; the next turn on B, right after, gets none.
        await AssertAnsweredFromAsync(onB, stub, knowledge: true);

        Assert.Equal(HttpStatusCode.NoContent, (await onA.DeleteAsync($"/api/v1/knowledge-sources/{sourceId}", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await onB.GetAsync($"/api/v1/knowledge-sources/{sourceId}", Ct)).StatusCode);
        var after = await AssertAnsweredFromAsync(onB, stub, knowledge: false);
        Assert.Equal(["system", "user"], after.Select(m => m.Role)); // no knowledge message at all: the workspace has no source left
    }

    [Fact]
    public async Task KillNine_MidRecrawl_SourceKeepsAnsweringFromItsLastCrawl_AndSettlesWithoutDuplicates()
    {
        var folder = NewFolder();
        await using var stub = await StubModelServer.StartAsync(Ct);
        await using var site = await LocalSite.StartAsync();
        var held = new Held(site, "/charlie");
        var settings = Settings(new Dictionary<string, string?> { ["Llm:OpenAI:BaseUrl"] = stub.OpenAIBaseUrl.ToString() });
        string key, sourceId;

        // :: Step 1: a clean crawl, then a refresh whose crawl is held on its fourth page when the silo is killed.
        using (var first = await ServerProcess.StartAsync(folder, Ct, settings))
        {
            (_, key) = await first.CreateWorkspaceAsync("Recrawl", "starter", 100, Ct);
            using var client = first.Client(key);
            sourceId = await CreateWebsiteAsync(client, site);
            Assert.Equal(("ready", PagePaths.Length), StatusAndCount(await SettledAsync(client, sourceId, first)));
            await AssertAnsweredFromAsync(client, stub, knowledge: true);

            held.Hold();
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync($"/api/v1/knowledge-sources/{sourceId}/refresh", null, Ct)).StatusCode);
            await held.Requested.WaitAsync(Patience, Ct);
            Assert.Equal("crawling", (await SourceAsync(client, sourceId)).GetProperty("status").GetString());
            await AssertAnsweredFromAsync(client, stub, knowledge: true); // the last crawl's chunks answer while the next one runs
            first.KillNine();
        }

        held.Release();

        // :: Step 2: on the restarted process the source answers from its last crawl until the new one settles, with each page's chunk once.
        using var second = await ServerProcess.StartAsync(folder, Ct, settings);
        using var secondClient = second.Client(key);
        await AssertAnsweredFromAsync(secondClient, stub, knowledge: true);
        Assert.Equal(("ready", PagePaths.Length), StatusAndCount(await SettledAsync(secondClient, sourceId, second)));
        var chunks = await SqliteChunksAsync(folder, sourceId);
        Assert.Equal(PagePaths.Length, chunks.Distinct().Count());
        Assert.Equal(PagePaths.Length, chunks.Select(c => c.PageKey).Distinct().Count());
        await AssertAnsweredFromAsync(secondClient, stub, knowledge: true);
    }

    private static (string?, int) StatusAndCount(JsonElement source) => (source.GetProperty("status").GetString(), source.GetProperty("chunk_count").GetInt32());

    /// <summary>
    /// Asks about the held page's gadget in a new session and checks whether the model's prompt carried the
    /// site's passage (<paramref name="knowledge"/>); returns the prompt.
    /// </summary>
    private static async Task<IReadOnlyList<StubMessage>> AssertAnsweredFromAsync(HttpClient client, StubModelServer stub, bool knowledge)
    {
        var asked = stub.Requests.Count;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/api/v1/chat", new { message = "What colour is the charlie gadget?" }, Ct)).StatusCode);
        var prompt = stub.Requests.Skip(asked).Last().Messages;
        Assert.True(knowledge == prompt.Any(m => m.Role == "system" && m.Content.Contains("charlie gadget is painted vermilion", StringComparison.Ordinal)),
            $"the prompt {(knowledge ? "lacks" : "has")} the site's passage: {string.Join(" | ", prompt.Select(m => $"{m.Role}: {m.Content}"))}");
        return prompt;
    }

    private string NewFolder()
    {
        var folder = Directory.CreateTempSubdirectory("luluclaw-knowledge-").FullName;
        _folders.Add(folder);
        return folder;
    }

    private static Dictionary<string, string?> Settings(Dictionary<string, string?> more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Knowledge:AllowPrivateAddresses"] = "true",
            ["Knowledge:LeaseSeconds"] = LeaseSeconds,
            ["Knowledge:PollSeconds"] = PollSeconds,
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return settings;
    }

    private static async Task<string> CreateWebsiteAsync(HttpClient client, LocalSite site)
    {
        var created = await client.PostAsJsonAsync("/api/v1/knowledge-sources", new { type = "website", name = "Gadgets", url = site.BaseUrl.ToString() }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> SourceAsync(HttpClient client, string id) =>
        await client.GetFromJsonAsync<JsonElement>($"/api/v1/knowledge-sources/{id}", Ct);

    /// <summary>Polls the source until it is ready or in error.</summary>
    private static async Task<JsonElement> SettledAsync(HttpClient client, string id, ServerProcess server)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var source = await SourceAsync(client, id);
            if (source.GetProperty("status").GetString() is "ready" or "error")
            {
                return source;
            }

            Assert.True(waited.Elapsed < Patience, $"source {id} is still {source.GetProperty("status").GetString()} after {Patience}:\n{server.Output}");
            await Task.Delay(100, Ct);
        }
    }

    private static async Task<LeaseRow> SqliteLeaseAsync(string folder, string sourceId)
    {
        await using var db = new SqliteConnection($"Data Source={Path.Combine(folder, "luluclaw.db")};Pooling=False");
        return await db.QuerySingleAsync<LeaseRow>(
            "SELECT status AS Status, lease_owner AS Owner, lease_until AS Until FROM knowledge_sources WHERE id = @sourceId", new { sourceId });
    }

    private static async Task<LeaseRow> PostgresLeaseAsync(NpgsqlConnection db, string sourceId) =>
        await db.QuerySingleAsync<LeaseRow>(
            "SELECT status AS Status, lease_owner AS Owner, lease_until AS Until FROM knowledge_sources WHERE id = @sourceId", new { sourceId });

    private static async Task<List<(string PageKey, long Position)>> SqliteChunksAsync(string folder, string sourceId)
    {
        await using var db = new SqliteConnection($"Data Source={Path.Combine(folder, "luluclaw.db")};Pooling=False");
        return [.. await db.QueryAsync<(string PageKey, long Position)>(
            "SELECT page_key, position FROM knowledge_chunks WHERE source_id = @sourceId", new { sourceId })];
    }

    private sealed record LeaseRow(string Status, string? Owner, long? Until);

    /// <summary>
    /// The test site's pages, one short paragraph each (one chunk each), the home page linking the rest; while
    /// held (<see cref="Hold"/>), the page at <c>heldPath</c> does not answer until <see cref="Release"/>.
    /// </summary>
    private sealed class Held
    {
        private readonly ConcurrentQueue<DateTimeOffset> _afterRelease = new();
        private volatile TaskCompletionSource _requested = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile TaskCompletionSource _released = Completed();

        public Held(LocalSite site, string heldPath)
        {
            var links = string.Join(" ", PagePaths.Skip(1).Select(p => $"""<a href="{p}">{p[1..]}</a>"""));
            site.Page("/", $"<html><head><title>Gadgets</title></head><body><main><h1>Gadgets</h1><p>Our gadgets: {links}.</p></main></body></html>");
            foreach (var path in PagePaths.Skip(1))
            {
                var name = path[1..];
                var html = $"<html><head><title>{name}</title></head><body><main><h1>The {name} gadget</h1><p>The {name} gadget is painted {Colour(name)}.</p></main></body></html>";
                site.Route(path, async context =>
                {
                    var released = _released;
                    if (released.Task.IsCompleted)
                    {
                        _afterRelease.Enqueue(DateTimeOffset.UtcNow);
                    }
                    else if (path == heldPath)
                    {
                        _requested.TrySetResult();
                        await released.Task.WaitAsync(context.RequestAborted);
                    }

                    context.Response.ContentType = "text/html; charset=utf-8";
                    await context.Response.WriteAsync(html, context.RequestAborted);
                });
            }
        }

        /// <summary>Completes when the held page is first asked for while held.</summary>
        public Task Requested => _requested.Task;

        /// <summary>When the first page other than the home page was asked for after the last <see cref="Release"/>.</summary>
        public DateTimeOffset FirstRequestAfterRelease => _afterRelease.TryPeek(out var at) ? at : DateTimeOffset.MaxValue;

        /// <summary>From now on the held page waits for <see cref="Release"/>.</summary>
        public void Hold()
        {
            _requested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        /// <summary>Lets the held request (if its client is still there) and every later one answer.</summary>
        public void Release()
        {
            _afterRelease.Clear();
            _released.TrySetResult();
        }

        private static TaskCompletionSource Completed()
        {
            var done = new TaskCompletionSource();
            done.SetResult();
            return done;
        }

        private static string Colour(string name) => name switch
        {
            "charlie" => "vermilion",
            "alpha" => "teal",
            "bravo" => "ochre",
            _ => "grey",
        };
    }
}

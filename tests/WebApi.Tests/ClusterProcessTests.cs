using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dapper;
using LuluClaw.Tests;
using Npgsql;

using static LuluClaw.WebApi.Tests.LuluResponses;

namespace LuluClaw.WebApi.Tests;

/// <summary>
/// Three real silos (separate processes) of one Orleans cluster on one PostgreSQL database, under
/// concurrent load across all of them: plain calls and streams, several workspaces, sessions shared
/// across nodes. One silo is killed with SIGKILL mid-load; the sessions that lived on it must answer
/// on a survivor within a bound. Afterwards every invariant is checked against the database and
/// against what each client was told.
/// </summary>
public sealed class ClusterProcessTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int StarterCap = 15;
    private const int TightKeyPerHour = 12;
    private const long ScarceCredits = 25;

    /// <summary>
    /// How long a session of the killed silo may take to answer on a survivor. The target is 2 s (the
    /// membership settings in <c>LuluSilo</c> declare a silo dead in about 1.5 s on loopback, and
    /// <c>bench/run.sh</c> measures it); the test allows a generous margin for a loaded CI machine.
    /// </summary>
    private static readonly TimeSpan FailoverBound = TimeSpan.FromSeconds(6);

    private readonly List<string> _folders = [];
    private readonly List<ServerProcess> _nodes = [];
    private readonly List<int> _siloPorts = [];
    private readonly ConcurrentBag<Outcome> _outcomes = [];
    private TestPostgres _postgres = null!;
    private HttpClient[] _clients = [];
    private volatile bool _killed;
    private int _completed;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _postgres = await TestPostgres.CreateAsync();
        var settings = new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "postgres",
            ["ConnectionStrings:LuluClaw"] = _postgres.ConnectionString,
            ["Llm:Echo:DelayMilliseconds"] = "15", // every turn spends a moment at the model, so some are in flight at the kill
            ["Plans:Key:tight:RequestsPerHour"] = TightKeyPerHour.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Plans:Key:open:RequestsPerDay"] = "1000000",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        };
        var nodeSettings = new List<Dictionary<string, string?>>();
        for (var i = 0; i < 3; i++)
        {
            _folders.Add(Directory.CreateTempSubdirectory($"luluclaw-node{i}-").FullName);
            var own = new Dictionary<string, string?>(settings);
            foreach (var (key, value) in TestPorts.Silo())
            {
                own[key] = value;
            }

            _siloPorts.Add(int.Parse(own["Cluster:SiloPort"]!, System.Globalization.CultureInfo.InvariantCulture));
            nodeSettings.Add(own);
        }

        _nodes.AddRange(await Task.WhenAll(_folders.Select((folder, i) => ServerProcess.StartAsync(folder, Ct, nodeSettings[i]))));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        foreach (var node in _nodes)
        {
            node.Dispose();
        }

        foreach (var folder in _folders)
        {
            Directory.Delete(folder, recursive: true);
        }

        await _postgres.DisposeAsync();
    }

    [Fact]
    public async Task ThreeNodes_KillNineMidLoad_EveryInvariantHolds()
    {
        var clock = Stopwatch.StartNew();
        var capped = await CreateWorkspaceAsync("starter", 1000, keyPlan: "open");         // the rolling-hour cap
        var scarce = await CreateWorkspaceAsync("byok", ScarceCredits, keyPlan: "open");  // credits run out
        var keyed = await CreateWorkspaceAsync("byok", 1000, keyPlan: "tight");           // the key's window
        var shared = await CreateWorkspaceAsync("byok", 100_000, keyPlan: "open");        // sessions shared across nodes
        var probe = await CreateWorkspaceAsync("byok", 100_000, keyPlan: "open");          // sessions that live on the silo to be killed
        Workspace[] all = [capped, scarce, keyed, shared, probe];
        var doomed = await SessionsLivingOnAsync(probe, node: 2, atLeast: 3);

        // :: Load: every worker sends its turns round the nodes still alive; a third are streamed.
        var workers = new List<Task>();
        for (var n = 0; n < 6; n++)
        {
            var w = n;
            workers.Add(Worker(capped, w, turns: 10, sessionOf: i => $"cap-{w}-{i}"));
            workers.Add(Worker(scarce, w, turns: 10, sessionOf: i => $"credit-{w}-{i}"));
            workers.Add(Worker(keyed, w, turns: 6, sessionOf: i => $"key-{w}-{i}"));

            // Two workers per shared session, each on a different node at a time: the same thread is written from everywhere.
            workers.Add(Worker(shared, w, turns: 16, sessionOf: _ => $"shared-{w % 3}"));
        }

        var total = 6 * (10 + 10 + 6 + 16);
        var killer = Task.Run(async () =>
        {
            while (Volatile.Read(ref _completed) < total / 2)
            {
                await Task.Delay(5, Ct);
            }

            _nodes[2].KillNine();
            var killedAt = Stopwatch.StartNew();
            _killed = true;

            // :: Failover: each session that lived on the killed silo answers through a survivor, every attempt
            // until then a clear refusal (503) or a cut connection, never a 500.
            return await Task.WhenAll(doomed.Select((session, i) => FirstAnswerAsync(probe, session, _clients[i % 2], killedAt)));
        }, Ct);

        await Task.WhenAll(workers);
        var failovers = await killer;
        output.WriteLine($"failover: the killed silo's {failovers.Length} sessions answered on a survivor after " +
            string.Join(", ", failovers.Select(f => $"{f.TotalMilliseconds:F0} ms")));
        Assert.All(failovers, f => Assert.True(f < FailoverBound, $"a session of the killed silo answered only after {f.TotalMilliseconds:F0} ms"));
        output.WriteLine($"load done in {clock.ElapsedMilliseconds} ms: {Summary()}");
        foreach (var error in _outcomes.Where(o => o.Kind == OutcomeKind.Refused && o.Status == 200).GroupBy(o => (o.Workspace.Plan, o.Workspace.KeyPlan, o.Reply)))
        {
            output.WriteLine($"stream ended in error ({error.Key.Plan}/{error.Key.KeyPlan}) x{error.Count()}: {error.Key.Reply}");
        }

        // :: Changes still reach the surviving nodes after the kill: a key revoked on node 0 is refused on node 1.
        using (var admin = _nodes[0].Client(ServerProcess.AdminToken))
        {
            Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/admin/workspaces/{keyed.Id}/keys/{keyed.KeyId}", Ct)).StatusCode);
        }

        var revokedAt = Stopwatch.StartNew();
        using (var onNode1 = _nodes[1].Client(keyed.Key))
        {
            while ((await onNode1.GetAsync("/api/v1/bots", Ct)).StatusCode != HttpStatusCode.Unauthorized)
            {
                Assert.True(revokedAt.Elapsed < TimeSpan.FromSeconds(10), "the revocation did not reach node 1");
                await Task.Delay(20, Ct);
            }
        }

        output.WriteLine($"revocation on node 0 seen on node 1 after {revokedAt.ElapsedMilliseconds} ms");

        // :: The invariants, against the database and against what the clients were told.
        await using var db = new NpgsqlConnection(_postgres.ConnectionString);
        var outcomes = _outcomes.ToArray();
        Assert.Contains(outcomes, o => o.Kind == OutcomeKind.Unknown); // the kill did cut turns in flight

        foreach (var workspace in all)
        {
            var id = workspace.Id;
            var turns = (await db.QueryAsync<(string Id, string Status, long Credits, string KeyId)>(
                """
                SELECT t.id, CASE WHEN p.id IS NULL THEN 'done' ELSE 'pending' END, t.credits, t.key_id
                FROM turns t LEFT JOIN pending_turns p ON p.id = t.id WHERE t.workspace_id = @id
                """, new { id })).ToArray();
            var credits = await db.ExecuteScalarAsync<long>("SELECT credits FROM workspaces WHERE id = @id", new { id });
            var mine = outcomes.Where(o => o.Workspace == workspace).ToArray();
            var acknowledged = mine.Where(o => o.Kind == OutcomeKind.Ok).ToArray();

            // Credits: each admitted turn debited once, never below zero.
            Assert.True(credits >= 0, $"{workspace.Plan}: balance {credits}");
            Assert.Equal(workspace.Credits - turns.Sum(t => t.Credits), credits);

            // Every acknowledged turn is settled. Beyond those, settled or pending turns can only be ones whose
            // clients never heard back (the node died between the commit and the answer): their messages are checked below.
            var unknown = mine.Where(o => o.Kind == OutcomeKind.Unknown).ToArray();
            Assert.InRange(turns.Count(t => t.Status == "done"), acknowledged.Length, acknowledged.Length + unknown.Length);
            Assert.True(turns.Count(t => t.Status != "done") <= unknown.Length);

            // What clients were told of the balance: never below zero, and (where no turn was refunded) each acknowledged turn saw its own debit.
            Assert.All(acknowledged, o => Assert.InRange(o.CreditsRemaining, 0, workspace.Credits - 1));
            if (workspace != shared)
            {
                Assert.Equal(acknowledged.Length, acknowledged.Select(o => o.CreditsRemaining).Distinct().Count());
            }

            // Messages: each acknowledged message stored exactly once, answered right after it; nothing stored that a client was refused.
            var messages = (await db.QueryAsync<(string SessionId, long Seq, string Role, string Content)>(
                "SELECT session_id, seq, role, content FROM messages WHERE workspace_id = @id ORDER BY session_id, seq", new { id })).ToArray();
            var userMessages = messages.Where(m => m.Role == "user").ToLookup(m => m.Content);
            foreach (var ok in acknowledged)
            {
                var stored = Assert.Single(userMessages[ok.Message]);
                Assert.Equal(ok.SessionId, stored.SessionId);
                var answer = messages.Single(m => m.SessionId == stored.SessionId && m.Seq == stored.Seq + 1);
                Assert.Equal(("assistant", $"Echo: {ok.Message}"), (answer.Role, answer.Content));
                Assert.Equal(answer.Content, ok.Reply);
            }

            var refused = mine.Where(o => o.Kind == OutcomeKind.Refused).Select(o => o.Message).ToHashSet();
            Assert.DoesNotContain(messages, m => m.Role == "user" && refused.Contains(m.Content));
            Assert.Equal(turns.Count(t => t.Status == "done"), userMessages.Count);

            // A stored message nobody was told of is one whose node died under it.
            var told = acknowledged.Select(o => o.Message).ToHashSet();
            var cut = unknown.Select(o => o.Message).ToHashSet();
            Assert.All(userMessages.Select(m => m.Key).Where(m => !told.Contains(m)), m => Assert.Contains(m, cut));

            // Each session: one order, no gaps, user and assistant in turn.
            foreach (var session in messages.GroupBy(m => m.SessionId))
            {
                Assert.Equal(Enumerable.Range(1, session.Count()).Select(i => (long)i), session.Select(m => m.Seq));
                Assert.All(session, m => Assert.Equal(m.Seq % 2 == 1 ? "user" : "assistant", m.Role));
            }
        }

        // The limits are exact across the nodes: the cap, the balance and the key's window are filled, never passed.
        Assert.Equal(StarterCap, await TurnCountAsync(db, capped.Id));
        Assert.Equal(ScarceCredits, await TurnCountAsync(db, scarce.Id));
        Assert.Equal(TightKeyPerHour, await TurnCountAsync(db, keyed.Id));
        Assert.Equal(0, await db.ExecuteScalarAsync<long>("SELECT credits FROM workspaces WHERE id = @id", new { id = scarce.Id }));
        Assert.Contains(outcomes, o => o.Workspace == shared && o.Kind == OutcomeKind.Ok && o.Streamed);
        Assert.DoesNotContain(outcomes, o => o.Workspace != shared && o.Status == 409); // only shared sessions can meet a concurrent writer
        if (outcomes.Any(o => o.Status >= 500 && o.Status != 503))
        {
            foreach (var node in _nodes)
            {
                output.WriteLine($"--- node {_nodes.IndexOf(node)}:\n{node.Output}");
            }
        }

        Assert.DoesNotContain(outcomes, o => o.Status >= 500 && o.Status != 503); // a silo going away is a 503, never a 500
        output.WriteLine($"checked in {clock.ElapsedMilliseconds} ms");
    }

    /// <summary>
    /// Starts sessions of <paramref name="workspace"/> with one turn each until at least
    /// <paramref name="atLeast"/> of them live on silo <paramref name="node"/>, as the admin API reports
    /// each session's silo; returns those.
    /// </summary>
    private async Task<List<string>> SessionsLivingOnAsync(Workspace workspace, int node, int atLeast)
    {
        using var admin = _nodes[0].Client(ServerProcess.AdminToken);
        var found = new List<string>();
        for (var i = 0; found.Count < atLeast; i++)
        {
            Assert.True(i < 200, $"after {i} sessions only {found.Count} live on silo {node}: placement never chose it");
            var session = $"probe-{i}";
            var outcome = await SendAsync(_clients[i % 3], workspace.Key, new Outcome(workspace, session, $"probe {i}", Streamed: false));
            Assert.Equal(OutcomeKind.Ok, outcome.Kind);
            _outcomes.Add(outcome);
            var history = await admin.GetFromJsonAsync<JsonElement>($"/api/admin/workspaces/{workspace.Id}/sessions/{session}/messages", Ct);
            if (history.GetProperty("silo").GetString() is { } silo && silo.Contains($":{_siloPorts[node]}@", StringComparison.Ordinal))
            {
                found.Add(session);
            }
        }

        return found;
    }

    /// <summary>Sends one turn of <paramref name="session"/> again and again until it is answered; returns when, since the kill.</summary>
    private async Task<TimeSpan> FirstAnswerAsync(Workspace workspace, string session, HttpClient node, Stopwatch killedAt)
    {
        for (var attempt = 0; ; attempt++)
        {
            Assert.True(killedAt.Elapsed < TimeSpan.FromSeconds(60), $"session {session} of the killed silo never answered on a survivor");
            var outcome = new Outcome(workspace, session, $"after the kill {session} #{attempt}", Streamed: false);
            using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            attemptTimeout.CancelAfter(TimeSpan.FromSeconds(2));
            try
            {
                using var request = Request(workspace.Key, outcome);
                using var response = await node.SendAsync(request, attemptTimeout.Token);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    var elapsed = killedAt.Elapsed;
                    var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
                    _outcomes.Add(outcome with
                    {
                        Kind = OutcomeKind.Ok, Status = 200, Reply = body.GetProperty("reply").GetString(), CreditsRemaining = body.GetProperty("credits_remaining").GetInt64(),
                    });
                    return elapsed;
                }

                // While the silo is being declared dead: a 503 with Retry-After, nothing stored or charged.
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.NotNull(response.Headers.RetryAfter);
                _outcomes.Add(outcome with { Kind = OutcomeKind.Refused, Status = 503 });
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
                _outcomes.Add(outcome with { Kind = OutcomeKind.Unknown }); // gave up waiting: it may still be stored
            }

            await Task.Delay(50, Ct);
        }
    }

    private static Task<long> TurnCountAsync(NpgsqlConnection db, string workspaceId) =>
        db.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM turns WHERE workspace_id = @workspaceId", new { workspaceId });

    private async Task Worker(Workspace workspace, int worker, int turns, Func<int, string> sessionOf)
    {
        for (var i = 0; i < turns; i++)
        {
            var alive = _killed ? _clients[..2] : _clients;
            var node = alive[(worker + i) % alive.Length];
            var message = $"{workspace.Plan}/{workspace.KeyPlan} w{worker} t{i}";
            var streamed = (worker + i) % 3 == 0;
            var outcome = new Outcome(workspace, sessionOf(i), message, streamed);
            try
            {
                _outcomes.Add(streamed ? await StreamAsync(node, workspace.Key, outcome) : await SendAsync(node, workspace.Key, outcome));
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !Ct.IsCancellationRequested)
            {
                _outcomes.Add(outcome with { Kind = OutcomeKind.Unknown }); // the node died under it: it may or may not have been stored
            }

            Interlocked.Increment(ref _completed);
        }
    }

    private static async Task<Outcome> SendAsync(HttpClient node, string key, Outcome outcome)
    {
        using var request = Request(key, outcome);
        using var response = await node.SendAsync(request, Ct);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return outcome with { Kind = OutcomeKind.Refused, Status = (int)response.StatusCode };
        }

        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return outcome with
        {
            Kind = OutcomeKind.Ok, Status = 200, Reply = body.GetProperty("reply").GetString(), CreditsRemaining = body.GetProperty("credits_remaining").GetInt64(),
        };
    }

    private static async Task<Outcome> StreamAsync(HttpClient node, string key, Outcome outcome)
    {
        using var request = Request(key, outcome);
        using var response = await node.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return outcome with { Kind = OutcomeKind.Refused, Status = (int)response.StatusCode };
        }

        var reply = new StringBuilder();
        foreach (var item in await ReadEventsAsync(response)) // throws if the kill cuts the stream
        {
            var data = JsonDocument.Parse(item.Data).RootElement;
            switch (item.EventType)
            {
                case "delta":
                    reply.Append(data.GetProperty("content").GetString());
                    break;
                case "done":
                    Assert.Equal(reply.ToString(), data.GetProperty("reply").GetString());
                    return outcome with { Kind = OutcomeKind.Ok, Status = 200, Reply = reply.ToString(), CreditsRemaining = data.GetProperty("credits_remaining").GetInt64() };
                case "error":
                    return outcome with { Kind = OutcomeKind.Refused, Status = 200, Reply = item.Data };
            }
        }

        throw new IOException("the stream ended without done or error"); // cut by the kill
    }

    private static HttpRequestMessage Request(string key, Outcome outcome)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/gateway/chat")
        {
            Content = JsonContent.Create(new { message = outcome.Message, session_id = outcome.SessionId, stream = outcome.Streamed }),
        };
        request.Headers.Authorization = new("Bearer", key);
        return request;
    }

    private async Task<Workspace> CreateWorkspaceAsync(string plan, long credits, string keyPlan)
    {
        if (_clients.Length == 0)
        {
            _clients = [.. _nodes.Select(n => new HttpClient { BaseAddress = n.Address, Timeout = TimeSpan.FromSeconds(60) })];
        }

        using var admin = _nodes[0].Client(ServerProcess.AdminToken);
        var created = await admin.PostAsJsonAsync("/api/admin/workspaces", new { name = plan, plan, credits }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetString()!;
        var key = await (await admin.PostAsJsonAsync($"/api/admin/workspaces/{id}/keys", new { plan = keyPlan }, Ct)).Content.ReadFromJsonAsync<JsonElement>(Ct);
        return new Workspace(id, plan, keyPlan, credits, key.GetProperty("id").GetString()!, key.GetProperty("key").GetString()!);
    }

    private string Summary() => string.Join(", ", _outcomes.GroupBy(o => (o.Kind, o.Status)).OrderBy(g => g.Key).Select(g => $"{g.Key.Kind} {g.Key.Status}: {g.Count()}"));

    private sealed record Workspace(string Id, string Plan, string KeyPlan, long Credits, string KeyId, string Key);

    private enum OutcomeKind
    {
        Pending,
        Ok,
        Refused,
        Unknown,
    }

    private sealed record Outcome(Workspace Workspace, string SessionId, string Message, bool Streamed)
    {
        public OutcomeKind Kind { get; init; }

        public int Status { get; init; }

        public string? Reply { get; init; }

        public long CreditsRemaining { get; init; }
    }
}

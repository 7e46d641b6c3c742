using LuluClaw.Grains;
using LuluClaw.Grains.Storage;

namespace LuluClaw.Silo.Storage;

/// <summary>What an admission is decided on, as read under its workspace's row lock.</summary>
/// <param name="KeyFound">The key named by the admission is a key of this workspace.</param>
/// <param name="LastSeq">Where the session's thread stands (0 for a new one).</param>
/// <param name="BotVersion">The answering bot's row version (0 if it is gone).</param>
internal readonly record struct LockedWorkspace(
    string Plan, long Credits, bool KeyFound, string? KeyPlan, bool KeyRevoked, long LastSeq, long BotVersion);

/// <summary>Whose turns a rolling window counts.</summary>
internal enum WindowOwner
{
    Key,
    Workspace,
}

/// <summary>One rolling window an admission must fit in.</summary>
internal readonly record struct WindowCheck(WindowOwner Owner, string OwnerId, RateWindow Window);

/// <summary>
/// The decision of an admission, shared by both providers' ledgers: the key must be live, then
/// credits (an empty balance is the condition waiting will not fix), then every rolling window of
/// the key's plan and the workspace's plan, counted from the admission times of the turns in it.
/// If several windows are full, the client waits for the one that frees up last.
/// </summary>
internal static class AdmissionRules
{
    /// <summary>
    /// The refusal that needs no window counted (unknown workspace, revoked key, no credits), or
    /// null, with the windows to count added to <paramref name="windows"/>: an owner's windows next to
    /// each other (the key's, then the workspace's).
    /// </summary>
    public static AdmissionResult? Check(TurnAdmission admission, LockedWorkspace? locked, long credits, List<WindowCheck> windows)
    {
        windows.Clear();
        if (locked is not { } ws)
        {
            return new AdmissionResult(AdmissionStatus.NotFound, 0, 0);
        }

        if (admission.KeyId is { } keyId)
        {
            if (!ws.KeyFound || ws.KeyRevoked)
            {
                return new AdmissionResult(AdmissionStatus.KeyRevoked, 0, credits);
            }

            foreach (var window in admission.Limits.ForKey(ws.KeyPlan))
            {
                windows.Add(new WindowCheck(WindowOwner.Key, keyId, window));
            }
        }

        if (credits < admission.Cost)
        {
            return new AdmissionResult(AdmissionStatus.InsufficientCredits, 0, credits);
        }

        foreach (var window in admission.Limits.ForWorkspace(ws.Plan))
        {
            windows.Add(new WindowCheck(WindowOwner.Workspace, Columns.Id(admission.WorkspaceId), window));
        }

        return null;
    }

    /// <summary>
    /// Null if <paramref name="window"/> has room for one more turn, given the admission times
    /// (Unix ms, oldest first) of the owner's turns, at least those since the window's start;
    /// otherwise how long until it has: until the turn that must leave for the count to drop below
    /// the limit has aged out. A window with room is weighed against <paramref name="tightest"/>,
    /// the standing of the windows with room measured so far, as it would be once this turn is in it.
    /// </summary>
    public static TimeSpan? Measure(RateWindow window, IReadOnlyList<long> admittedTimes, DateTimeOffset now, ref WindowStanding? tightest)
    {
        if (window.Limit <= 0)
        {
            return window.Length; // a closed window (its plan is not configured) admits nothing, however long one waits
        }

        var cutoff = Columns.Ms(now - window.Length);
        var first = FirstAfter(admittedTimes, cutoff);
        var count = admittedTimes.Count - first;
        if (count >= window.Limit)
        {
            var freedBy = admittedTimes[first + count - window.Limit];
            return DateTimeOffset.FromUnixTimeMilliseconds(freedBy) + window.Length - now;
        }

        // With this turn in it, the window has one turn less left; its oldest turn (this one, if it was empty) ages out first.
        var reset = count == 0 ? window.Length : DateTimeOffset.FromUnixTimeMilliseconds(admittedTimes[first]) + window.Length - now;
        var standing = new WindowStanding(window.Limit, window.Limit - count - 1, reset);
        if (tightest is not { } known || standing.Remaining < known.Remaining || standing.Remaining == known.Remaining && standing.ResetAfter > known.ResetAfter)
        {
            tightest = standing;
        }

        return null;
    }

    /// <summary>The refusal of the windows that are full (their retry times and windows), or null if none is: the client waits for the one that frees up last.</summary>
    public static AdmissionResult? Refusal(List<(TimeSpan RetryAfter, RateWindow Window)> full, long credits)
    {
        if (full.Count == 0)
        {
            return null;
        }

        var longest = full.MaxBy(r => r.RetryAfter);
        return new AdmissionResult(AdmissionStatus.RateLimited, 0, credits, longest.RetryAfter, $"{longest.Window.Description} reached",
            Window: new WindowStanding(longest.Window.Limit, 0, longest.RetryAfter));
    }

    /// <summary>The answer for an admitted turn, with where its tightest window stands.</summary>
    public static AdmissionResult Admitted(TurnAdmission admission, LockedWorkspace ws, long remaining, WindowStanding? tightest) =>
        new(AdmissionStatus.Admitted, admission.Cost, remaining, SessionLastSeq: ws.LastSeq, BotVersion: ws.BotVersion, Window: tightest);

    /// <summary>The index of the first time after <paramref name="cutoff"/> in ascending <paramref name="times"/>.</summary>
    private static int FirstAfter(IReadOnlyList<long> times, long cutoff)
    {
        var (low, high) = (0, times.Count);
        while (low < high)
        {
            var mid = (low + high) >>> 1;
            if (times[mid] > cutoff)
            {
                high = mid;
            }
            else
            {
                low = mid + 1;
            }
        }

        return low;
    }
}

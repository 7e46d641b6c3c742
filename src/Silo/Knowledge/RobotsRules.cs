namespace LuluClaw.Silo.Knowledge;

/// <summary>
/// The rules of a robots.txt (RFC 9309) that apply to one crawler: the group naming its product
/// token most specifically, else the <c>*</c> group; the longest matching Allow or Disallow decides
/// (Allow on a tie), with <c>*</c> and a final <c>$</c> as wildcards.
/// </summary>
/// <remarks>
/// Hand-written: the format is a few line rules, and no package on our feed parses it with the
/// RFC's longest-match semantics. Patterns come from the remote site, so matching is a linear
/// wildcard walk, not a regular expression.
/// </remarks>
internal sealed class RobotsRules
{
    /// <summary>Rules that allow everything (no robots.txt).</summary>
    public static readonly RobotsRules AllowAll = new([]);

    private readonly List<(string Pattern, bool Allow)> _rules;

    private RobotsRules(List<(string Pattern, bool Allow)> rules) => _rules = rules;

    /// <summary>Reads the rules in <paramref name="robotsTxt"/> that apply to <paramref name="productToken"/>.</summary>
    public static RobotsRules Parse(string robotsTxt, string productToken)
    {
        var groups = new List<(List<string> Agents, List<(string, bool)> Rules)>();
        (List<string> Agents, List<(string, bool)> Rules)? current = null;
        var lastWasAgent = false;
        foreach (var raw in robotsTxt.ReplaceLineEndings("\n").Split('\n'))
        {
            var line = raw.Split('#')[0];
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue;
            }

            var key = line[..colon].Trim().ToLowerInvariant();
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "user-agent":
                    if (current is null || !lastWasAgent)
                    {
                        current = ([], []);
                        groups.Add(current.Value);
                    }

                    current.Value.Agents.Add(value.ToLowerInvariant());
                    lastWasAgent = true;
                    break;
                case "allow" or "disallow":
                    lastWasAgent = false;
                    if (current is not null && value.Length > 0)
                    {
                        current.Value.Rules.Add((value, key == "allow"));
                    }

                    break;
                default:
                    // Sitemap, Crawl-delay and the like: not group members, and they do not end a group.
                    break;
            }
        }

        var token = productToken.ToLowerInvariant();
        var best = groups
            .SelectMany(g => g.Agents.Where(a => a != "*" && token.StartsWith(a, StringComparison.Ordinal)).Select(a => (a.Length, g.Rules)))
            .ToList();
        IEnumerable<List<(string, bool)>> chosen = best.Count > 0
            ? best.Where(b => b.Length == best.Max(m => m.Length)).Select(b => b.Rules)
            : groups.Where(g => g.Agents.Contains("*")).Select(g => g.Rules);
        return new RobotsRules(chosen.SelectMany(r => r).ToList());
    }

    /// <summary>Whether the crawler may fetch <paramref name="url"/>.</summary>
    public bool IsAllowed(Uri url)
    {
        var path = url.PathAndQuery;
        if (path == "/robots.txt")
        {
            return true;
        }

        var decision = true;
        var longest = -1;
        foreach (var (pattern, allow) in _rules)
        {
            if (Matches(pattern, path) && (pattern.Length > longest || (pattern.Length == longest && allow)))
            {
                longest = pattern.Length;
                decision = allow;
            }
        }

        return decision;
    }

    /// <summary>Whether <paramref name="path"/> starts with <paramref name="pattern"/>, <c>*</c> matching any run and a final <c>$</c> the end.</summary>
    private static bool Matches(string pattern, string path)
    {
        var anchored = pattern.EndsWith('$');
        if (anchored)
        {
            pattern = pattern[..^1];
        }

        // Greedy wildcard matching with one backtrack point: linear in practice, never exponential.
        int p = 0, s = 0, star = -1, resume = 0;
        while (s < path.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                resume = s;
            }
            else if (p < pattern.Length && pattern[p] == path[s])
            {
                p++;
                s++;
            }
            else if (p == pattern.Length && !anchored)
            {
                return true;
            }
            else if (star >= 0)
            {
                p = star + 1;
                s = ++resume;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }
}

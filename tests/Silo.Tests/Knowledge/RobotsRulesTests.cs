using LuluClaw.Silo.Knowledge;

namespace LuluClaw.Silo.Tests.Knowledge;

/// <summary>robots.txt groups, longest-match precedence and wildcards.</summary>
public sealed class RobotsRulesTests
{
    private const string Robots = """
        User-agent: *
        Disallow: /

        User-agent: OtherBot
        User-agent: LuluClawBot
        Disallow: /private
        Allow: /private/public
        Disallow: /*.pdf$
        Disallow: /search*q=
        Allow: /tie
        Disallow: /tie
        """;

    [Theory]
    [InlineData("/", true)]
    [InlineData("/docs/page", true)]
    [InlineData("/private", false)]
    [InlineData("/private/secret", false)]
    [InlineData("/private/public/page", true)]
    [InlineData("/files/report.pdf", false)]
    [InlineData("/files/report.pdf?download=1", true)]
    [InlineData("/search?lang=en&q=word", false)]
    [InlineData("/search?lang=en", true)]
    [InlineData("/tie", true)]
    [InlineData("/robots.txt", true)]
    public void IsAllowed_OurGroup_LongestMatchWins(string path, bool allowed)
    {
        var rules = RobotsRules.Parse(Robots, "LuluClawBot");

        Assert.Equal(allowed, rules.IsAllowed(new Uri("http://example.com" + path)));
    }

    [Fact]
    public void IsAllowed_NoGroupForUs_StarGroupApplies()
    {
        var rules = RobotsRules.Parse(Robots, "SomeoneElse");

        Assert.False(rules.IsAllowed(new Uri("http://example.com/docs")));
    }

    [Fact]
    public void IsAllowed_EmptyFile_AllowsEverything()
    {
        Assert.True(RobotsRules.Parse("", "LuluClawBot").IsAllowed(new Uri("http://example.com/anything")));
    }
}

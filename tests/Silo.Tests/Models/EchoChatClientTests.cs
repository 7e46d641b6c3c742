using LuluClaw.Silo.Models;
using Microsoft.Extensions.AI;

namespace LuluClaw.Silo.Tests.Models;

public sealed class EchoChatClientTests
{
    [Fact]
    public async Task GetResponse_EchoesTheLastUserMessage_AndCountsWhitespaceSeparatedWords()
    {
        using var echo = new EchoChatClient();
        ChatMessage[] messages =
        [
            new(ChatRole.System, "  Be\tbrief.  "),
            new(ChatRole.User, "first question"),
            new(ChatRole.Assistant, "Echo: first question"),
            new(ChatRole.User, "Hello\u00a0 world,\n\n again "),
        ];

        var response = await echo.GetResponseAsync(messages, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("Echo: Hello\u00a0 world,\n\n again ", response.Text);
        Assert.Equal(2 + 2 + 3 + 3, response.Usage!.InputTokenCount); // every message, runs of any whitespace (a no-break space too) split once
        Assert.Equal(4, response.Usage.OutputTokenCount);
        Assert.Equal(14, response.Usage.TotalTokenCount);
    }
}

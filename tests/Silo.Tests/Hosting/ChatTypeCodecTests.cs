using LuluClaw.Silo.Hosting;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace LuluClaw.Silo.Tests.Hosting;

/// <summary>Microsoft.Extensions.AI's chat types through Orleans' serializer, as a grain call would carry them.</summary>
public sealed class ChatTypeCodecTests
{
    private static Serializer NewSerializer() =>
        new ServiceCollection().AddSerializer(s => s.AddChatTypeCodecs()).BuildServiceProvider().GetRequiredService<Serializer>();

    [Fact]
    public void ChatMessage_WithTextAndFunctionCall_RoundTripsThroughOrleans()
    {
        var serializer = NewSerializer();
        var message = new ChatMessage(ChatRole.Assistant, [
            new TextContent("Let me hand you over."),
            new FunctionCallContent("call_1", "handoff", new Dictionary<string, object?> { ["reason"] = "refund" }),
        ]);

        var copy = serializer.Deserialize<ChatMessage>(serializer.SerializeToArray(message))!;

        Assert.Equal(ChatRole.Assistant, copy.Role);
        Assert.Equal("Let me hand you over.", copy.Text);
        var call = Assert.IsType<FunctionCallContent>(copy.Contents[1]);
        Assert.Equal(("call_1", "handoff"), (call.CallId, call.Name));
        Assert.Equal("refund", call.Arguments!["reason"]?.ToString());
    }

    [Fact]
    public void ChatMessage_WithoutTheCodecs_IsRefused()
    {
        // The registration is what makes it work: Orleans alone has no codec for these types.
        var serializer = new ServiceCollection().AddSerializer().BuildServiceProvider().GetRequiredService<Serializer>();
        Assert.ThrowsAny<Exception>(() => serializer.SerializeToArray(new ChatMessage(ChatRole.User, "hi")));
    }
}

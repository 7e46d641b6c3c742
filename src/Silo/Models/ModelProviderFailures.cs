using System.Globalization;
using System.Text;
using System.Text.Json;
using LuluClaw.Grains.Models;
using Microsoft.AspNetCore.WebUtilities;

namespace LuluClaw.Silo.Models;

/// <summary>
/// Words a model provider's failures as <see cref="ModelUnavailableException"/>s, for
/// <see cref="ProviderFailureChatClient"/> over both <see cref="OpenAIChatClients"/> and <see cref="AnthropicChatClients"/>. The messages name the provider by
/// its base URL without user info or query (either may carry a secret) and never contain the API key: it
/// is masked wherever it shows up, and an error body is quoted only for failures that are not about the key.
/// </summary>
internal sealed class ModelProviderFailures
{
    /// <summary>The standard header: delta-seconds or an HTTP-date.</summary>
    public const string RetryAfterHeader = "Retry-After";

    /// <summary>The millisecond variant that OpenAI and Anthropic send alongside it.</summary>
    public const string RetryAfterMsHeader = "retry-after-ms";

    private const int MaxDetailLength = 300;
    private const int MinMaskedKeyLength = 8;

    private readonly string _provider;
    private readonly string? _apiKey;
    private readonly TimeSpan _timeout;

    /// <summary>Failures of the <paramref name="kind"/> (e.g. "Anthropic provider") at <paramref name="baseUrl"/>.</summary>
    public ModelProviderFailures(string kind, Uri baseUrl, string? apiKey, TimeSpan timeout)
    {
        _provider = $"{kind} at {Describe(baseUrl)}";
        // A key this short is a placeholder, and masking it would mangle the message rather than protect anything.
        _apiKey = apiKey is { Length: >= MinMaskedKeyLength } ? apiKey : null;
        _timeout = timeout;
    }

    /// <summary>How the messages name the provider, e.g. "OpenAI-compatible provider at http://127.0.0.1:1234/v1".</summary>
    public string Provider => _provider;

    /// <summary>Throws unless <paramref name="timeout"/> is positive (or infinite) and fits a timer.</summary>
    public static void ThrowIfInvalidTimeout(TimeSpan timeout)
    {
        if (timeout != Timeout.InfiniteTimeSpan && (timeout <= TimeSpan.Zero || timeout.TotalMilliseconds > int.MaxValue))
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The model call timeout must be positive.");
        }
    }

    /// <summary>The provider answered with HTTP <paramref name="status"/>.</summary>
    public ModelUnavailableException Answered(string model, int status, string? detail, TimeSpan? retryAfter)
    {
        var (meaning, quoteDetail) = status switch
        {
            401 => ("the API key was rejected", false),
            403 => ("the API key may not use this model", false),
            404 => ("no such model or endpoint (check the base URL and the model name)", true),
            408 => ("the request timed out at the provider", true),
            429 => ("rate limited", true),
            >= 500 => ("the provider failed", true),
            _ => ("the request was refused", true),
        };
        var reason = ReasonPhrases.GetReasonPhrase(status);
        var message = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"{_provider} answered {status}")
            .Append(reason.Length > 0 ? " " + reason : "")
            .Append(CultureInfo.InvariantCulture, $" for model '{model}': {meaning}");
        if (quoteDetail && !string.IsNullOrWhiteSpace(detail))
        {
            message.Append(CultureInfo.InvariantCulture, $" ({detail})");
        }

        if (retryAfter is { } delay)
        {
            message.Append(CultureInfo.InvariantCulture, $"; retry after {delay.TotalSeconds:0.###} s");
        }

        return new ModelUnavailableException(Mask(message.ToString()), retryAfter, requestRefused: status is 400 or 422);
    }

    /// <summary>The provider could not be reached: connection refused, DNS, socket errors, a dropped connection.</summary>
    public ModelUnavailableException Unreachable(string model, Exception exception)
    {
        var cause = exception.GetBaseException();
        var request = FindInChain<HttpRequestException>(exception);
        var detail = request is { HttpRequestError: not HttpRequestError.Unknown }
            ? $"{request.HttpRequestError}: {request.Message}"
            : (request ?? cause).Message;
        return new ModelUnavailableException(Mask($"{_provider} could not be reached for model '{model}' ({detail})"), inner: exception);
    }

    /// <summary>The provider did not answer within the configured timeout.</summary>
    public ModelUnavailableException TimedOut(string model, Exception exception) =>
        new(Mask($"{_provider} did not answer within {_timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s for model '{model}'"), inner: exception);

    /// <summary>The provider reported an error in the middle of a stream.</summary>
    public ModelUnavailableException FailedWhileStreaming(string model, string detail, Exception exception) =>
        new(Mask($"{_provider} reported an error while streaming for model '{model}' ({Truncate(detail)})"), inner: exception);

    /// <summary>The provider answered something that is not a valid response.</summary>
    public ModelUnavailableException Malformed(string model, Exception exception) =>
        new(Mask($"{_provider} sent a response for model '{model}' that could not be read ({exception.GetType().Name}: {Truncate(exception.Message)})"), inner: exception);

    /// <summary>
    /// The delay a failed response asks for: <c>retry-after-ms</c> when present, else <c>Retry-After</c> as
    /// delta-seconds or as an HTTP-date relative to <paramref name="now"/>; a date in the past means now.
    /// </summary>
    public static TimeSpan? ParseRetryAfter(string? retryAfterMs, string? retryAfter, DateTimeOffset now)
    {
        if (double.TryParse(retryAfterMs?.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var milliseconds)
            && double.IsFinite(milliseconds) && milliseconds >= 0 && milliseconds < TimeSpan.MaxValue.TotalMilliseconds)
        {
            return TimeSpan.FromMilliseconds(milliseconds);
        }

        var value = retryAfter?.Trim();
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
        {
            return double.IsFinite(seconds) && seconds >= 0 && seconds < TimeSpan.MaxValue.TotalSeconds
                ? TimeSpan.FromSeconds(seconds)
                : null;
        }

        if (DateTimeOffset.TryParseExact(value, "r", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date)
            || DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out date))
        {
            var delay = date - now;
            return delay > TimeSpan.Zero ? delay : TimeSpan.Zero;
        }

        return null;
    }

    /// <summary>The <c>error.message</c> of an OpenAI or Anthropic error body, shortened; null when there is none.</summary>
    public static string? ErrorDetail(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("message", out var message)
                && message.ValueKind == JsonValueKind.String
                ? Truncate(message.GetString() ?? "")
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Describe(Uri baseUrl) =>
        baseUrl.IsAbsoluteUri
            ? baseUrl.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped).TrimEnd('/')
            : baseUrl.OriginalString;

    private static T? FindInChain<T>(Exception exception)
        where T : Exception
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            if (current is T found)
            {
                return found;
            }
        }

        return null;
    }

    private static string Truncate(string text)
    {
        var trimmed = text.ReplaceLineEndings(" ").Trim();
        return trimmed.Length <= MaxDetailLength ? trimmed : string.Concat(trimmed.AsSpan(0, MaxDetailLength), "…");
    }

    private string Mask(string message) =>
        _apiKey is null ? message : message.Replace(_apiKey, "***", StringComparison.Ordinal);
}

using System.Security.Cryptography;
using System.Text;
using Orleans;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace LuluClaw.WebApi.Http;

/// <summary>The caller a request was authenticated as.</summary>
/// <param name="KeyHash">The key's SHA-256 (hex): the key of its <see cref="IApiKeyGrain"/>.</param>
public sealed record Caller(ApiKeyInfo Key, string KeyHash)
{
    /// <summary>The caller's workspace.</summary>
    public Guid WorkspaceId => Key.WorkspaceId;
}

/// <summary>How a surface writes its own error shape.</summary>
public delegate IResult ErrorWriter(int statusCode, string message);

/// <summary>
/// Bearer-key authentication for the key families: the key is hashed and resolved by the
/// <see cref="IApiKeyGrain"/> of that hash; the plaintext goes no further than this filter.
/// </summary>
public static class ApiKeyAuthentication
{
    private static readonly object CallerItem = new();

    /// <summary>The authenticated caller of this request (set by <see cref="RequireApiKey{TBuilder}"/>).</summary>
    public static Caller GetCaller(this HttpContext context) =>
        context.Items[CallerItem] as Caller ?? throw new InvalidOperationException("The endpoint has no RequireApiKey filter.");

    /// <summary>
    /// Requires a valid <c>lulu_sk_</c> key carrying <paramref name="scope"/>: 401 when the key is
    /// missing, malformed, unknown or revoked; 403 when it lacks the scope.
    /// </summary>
    /// <param name="turn">
    /// The route runs a chat turn, whose admission checks the key's row again in the database (a key
    /// revoked anywhere is refused there, 401). Such a route may take the key from this silo's
    /// <see cref="ResolvedApiKeys"/> instead of asking the key's grain on every request; a 401 drops it.
    /// </param>
    public static TBuilder RequireApiKey<TBuilder>(this TBuilder builder, string scope, ErrorWriter error, bool turn = false)
        where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (invocation, next) =>
        {
            var http = invocation.HttpContext;
            var (key, refusal) = await AuthenticateAsync(http, turn);
            if (key is null)
            {
                return error(StatusCodes.Status401Unauthorized, refusal!);
            }

            if (!key.HasScope(scope))
            {
                return error(StatusCodes.Status403Forbidden, $"this API key lacks the '{scope}' scope");
            }

            return await next(invocation);
        });

    /// <summary>
    /// Resolves the request's bearer key and, if valid, makes it the request's caller; otherwise
    /// says why not (for a 401).
    /// </summary>
    public static async Task<(ApiKeyInfo? Key, string? Refusal)> AuthenticateAsync(HttpContext http, bool turn = false)
    {
        if (BearerToken(http.Request) is not { } token)
        {
            return (null, "missing API key: send 'Authorization: Bearer lulu_sk_...'");
        }

        if (!ApiKeys.IsWellFormed(token))
        {
            return (null, "malformed API key");
        }

        var hash = ApiKeys.Hash(token);
        var resolved = turn ? http.RequestServices.GetRequiredService<ResolvedApiKeys>() : null;
        var key = resolved?.Find(hash);
        if (key is null)
        {
            key = await http.RequestServices.GetRequiredService<IGrainFactory>().GetGrain<IApiKeyGrain>(hash).ResolveAsync(http.RequestAborted);
            if (key is null)
            {
                return (null, "invalid API key");
            }

            resolved?.Keep(hash, key);
        }

        if (resolved is not null)
        {
            // The turn's admission found the key revoked: the next request asks the key's grain again.
            http.Response.OnStarting(static state =>
            {
                var (http, resolved, hash) = ((HttpContext, ResolvedApiKeys, string))state;
                if (http.Response.StatusCode == StatusCodes.Status401Unauthorized)
                {
                    resolved.Forget(hash);
                }

                return Task.CompletedTask;
            }, (http, resolved, hash));
        }

        http.Items[CallerItem] = new Caller(key, hash);
        return (key, null);
    }

    /// <summary>
    /// Requires <c>Authorization: Bearer &lt;admin token&gt;</c>, compared in constant time; 401 otherwise.
    /// With <paramref name="browser"/>, HTTP Basic with the token as password is accepted too, and a 401
    /// asks the browser for it.
    /// </summary>
    public static TBuilder RequireAdminToken<TBuilder>(this TBuilder builder, string adminToken, ErrorWriter error, bool browser = false)
        where TBuilder : IEndpointConventionBuilder
    {
        var expected = SHA256.HashData(Encoding.UTF8.GetBytes(adminToken));
        return builder.AddEndpointFilter(async (invocation, next) =>
        {
            var request = invocation.HttpContext.Request;
            var token = BearerToken(request) ?? (browser ? BasicPassword(request) : null);
            var given = SHA256.HashData(Encoding.UTF8.GetBytes(token ?? ""));
            if (token is not null && CryptographicOperations.FixedTimeEquals(given, expected))
            {
                return await next(invocation);
            }

            if (browser)
            {
                // A browser cannot add a bearer token to a page load, but it asks for Basic credentials and
                // sends them with every request of the page after: any user name, the admin token as password.
                invocation.HttpContext.Response.Headers.WWWAuthenticate = "Basic realm=\"LuluClaw admin\", charset=\"UTF-8\"";
            }

            return error(StatusCodes.Status401Unauthorized, token is null ? "missing admin token" : "invalid admin token");
        });
    }

    /// <summary>The password of <c>Authorization: Basic …</c>, or null if the header is not that.</summary>
    private static string? BasicPassword(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Basic ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        Span<byte> decoded = stackalloc byte[512];
        if (!Convert.TryFromBase64String(header[Scheme.Length..].Trim(), decoded, out var length))
        {
            return null;
        }

        var credentials = Encoding.UTF8.GetString(decoded[..length]);
        var colon = credentials.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? null : credentials[(colon + 1)..];
    }

    private static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && header.Length > Scheme.Length
            ? header[Scheme.Length..].Trim()
            : null;
    }
}

using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Orleans;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Infrastructure;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LuluClaw.WebApi.Http;

/// <summary>The caller a request was authenticated as with a <c>lulu_sk_</c> key.</summary>
/// <param name="KeyHash">The key's SHA-256 (hex): the key of its <see cref="IApiKeyGrain"/>.</param>
internal sealed record Caller(ApiKeyInfo Key, string KeyHash)
{
    /// <summary>The caller's workspace.</summary>
    public Guid WorkspaceId => Key.WorkspaceId;
}

/// <summary>
/// The front door's authentication: one ASP.NET Core authentication scheme per credential family
/// (<see cref="ApiKeyScheme"/> for workspace keys, <see cref="AdminScheme"/> for the operators'
/// token), authorization policies per scope, and refusals written in the surface's own error shape
/// (<see cref="ErrorShapes"/>). New credential families plug in as further schemes and policies.
/// </summary>
internal static class Authentication
{
    /// <summary>Workspace keys, <c>Authorization: Bearer lulu_sk_...</c>.</summary>
    public const string ApiKeyScheme = "lulu_sk";

    /// <summary>The operators' token, <c>Authorization: Bearer &lt;admin token&gt;</c>.</summary>
    public const string AdminScheme = "admin";

    /// <summary>The claim that lists a key's scopes, one claim per scope.</summary>
    public const string ScopeClaim = "scope";

    private const string AnyKeyPolicy = "lulu_sk";

    /// <summary>Registers the schemes, the policies and the refusal writer.</summary>
    public static IServiceCollection AddLuluAuthentication(this IServiceCollection services)
    {
        services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, ApiKeyHandler>(ApiKeyScheme, null)
            .AddScheme<AuthenticationSchemeOptions, AdminTokenHandler>(AdminScheme, null);
        var policies = services.AddAuthorizationBuilder()
            .AddPolicy(AnyKeyPolicy, p => p.AddAuthenticationSchemes(ApiKeyScheme).RequireAuthenticatedUser())
            .AddPolicy(AdminScheme, p => p.AddAuthenticationSchemes(AdminScheme).RequireAuthenticatedUser());
        foreach (var scope in ApiScopes.All)
        {
            policies.AddPolicy(ScopePolicy(scope), p => p.AddAuthenticationSchemes(ApiKeyScheme).RequireAuthenticatedUser().RequireClaim(ScopeClaim, scope));
        }

        services.AddSingleton<IAuthorizationMiddlewareResultHandler, RefusalWriter>();
        return services;
    }

    /// <summary>
    /// Requires a valid <c>lulu_sk_</c> key carrying <paramref name="scope"/> (any valid key when null):
    /// 401 when the key is missing, malformed, unknown or revoked; 403 when it lacks the scope.
    /// </summary>
    public static TBuilder RequireApiKey<TBuilder>(this TBuilder builder, string? scope)
        where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(scope is null ? AnyKeyPolicy : ScopePolicy(scope)).ProducesErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status403Forbidden);

    /// <summary>
    /// Requires the admin token, compared in constant time; 401 otherwise. With <paramref name="browser"/>,
    /// HTTP Basic with the token as password is accepted too, and a 401 asks the browser for it.
    /// </summary>
    public static TBuilder RequireAdminToken<TBuilder>(this TBuilder builder, bool browser = false)
        where TBuilder : IEndpointConventionBuilder
    {
        if (browser)
        {
            builder.WithMetadata(BrowserLogin.Instance);
        }

        return builder.RequireAuthorization(AdminScheme).ProducesErrors(StatusCodes.Status401Unauthorized);
    }

    /// <summary>The authenticated caller of this request (a route behind <see cref="RequireApiKey{TBuilder}"/>).</summary>
    public static Caller GetCaller(this HttpContext context) =>
        context.Features.Get<Caller>() ?? throw new InvalidOperationException("The endpoint does not require an API key.");

    private static string ScopePolicy(string scope) => $"scope:{scope}";

    /// <summary>The token of <c>Authorization: Bearer …</c>, or null if the header is not that.</summary>
    private static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization;
        if (header.Count != 1)
        {
            return null; // none, or several: which one was meant is not ours to guess
        }

        var value = header[0] ?? "";
        const string Scheme = "Bearer ";
        return value.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) && value.AsSpan(Scheme.Length).Trim().Length > 0
            ? value[Scheme.Length..].Trim()
            : null;
    }

    /// <summary>Why authentication refused the request, for the 401's message.</summary>
    private sealed record Refusal(string Message);

    /// <summary>Endpoint metadata: the admin token may come as a Basic password (pages a browser loads).</summary>
    private sealed class BrowserLogin
    {
        public static readonly BrowserLogin Instance = new();
    }

    /// <summary>
    /// Resolves <c>lulu_sk_</c> keys: the key is hashed and resolved by the <see cref="IApiKeyGrain"/> of
    /// that hash; the plaintext goes no further than this handler.
    /// </summary>
    /// <remarks>
    /// A route that runs a chat turn (<see cref="ChatTurns.RunsChatTurn{TBuilder}"/>) has its admission check
    /// the key's row again in the database (a key revoked anywhere is refused there, 401), so there the key
    /// may come from this silo's <see cref="ResolvedApiKeys"/> instead of the key's grain; a 401 drops it.
    /// </remarks>
    private sealed class ApiKeyHandler(
        IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IGrainFactory grains, ResolvedApiKeys resolvedKeys)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (BearerToken(Request) is not { } token)
            {
                return Refuse(Request.Headers.Authorization.Count > 1
                    ? "send one 'Authorization' header, not several"
                    : "missing API key: send 'Authorization: Bearer lulu_sk_...'");
            }

            if (!ApiKeys.IsWellFormed(token))
            {
                return Refuse("malformed API key");
            }

            var hash = ApiKeys.Hash(token);
            var resolved = Context.GetEndpoint()?.Metadata.GetMetadata<ChatTurns.TurnRoute>() is null ? null : resolvedKeys;
            var key = resolved?.Find(hash);
            if (key is null)
            {
                key = await grains.GetGrain<IApiKeyGrain>(hash).ResolveAsync(Context.RequestAborted);
                if (key is null)
                {
                    return Refuse("invalid API key");
                }

                resolved?.Keep(hash, key);
            }

            if (resolved is not null)
            {
                // The turn's admission found the key revoked: the next request asks the key's grain again.
                Response.OnStarting(static state =>
                {
                    var (http, resolved, hash) = ((HttpContext, ResolvedApiKeys, string))state;
                    if (http.Response.StatusCode == StatusCodes.Status401Unauthorized)
                    {
                        resolved.Forget(hash);
                    }

                    return Task.CompletedTask;
                }, (Context, resolved, hash));
            }

            Context.Features.Set(new Caller(key, hash));
            var claims = new List<Claim>(key.Scopes.Count + 2)
            {
                new(ClaimTypes.NameIdentifier, key.Id),
                new("workspace", key.WorkspaceId.ToString("D")),
            };
            claims.AddRange(key.Scopes.Select(s => new Claim(ScopeClaim, s)));
            return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, Scheme.Name)), Scheme.Name));
        }

        private AuthenticateResult Refuse(string message)
        {
            Context.Features.Set(new Refusal(message));
            return AuthenticateResult.Fail(message);
        }
    }

    /// <summary>The admin token from configuration (<see cref="WebApiEndpoints.AdminToken"/>), compared in constant time.</summary>
    private sealed class AdminTokenHandler(
        IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, Microsoft.Extensions.Configuration.IConfiguration configuration)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var browser = Context.GetEndpoint()?.Metadata.GetMetadata<BrowserLogin>() is not null;
            var token = BearerToken(Request) ?? (browser ? BasicPassword(Request) : null);
            if (WebApiEndpoints.AdminToken(configuration) is not { Length: > 0 } adminToken || token is null)
            {
                return Task.FromResult(Refuse("missing admin token"));
            }

            var given = SHA256.HashData(Encoding.UTF8.GetBytes(token));
            var expected = SHA256.HashData(Encoding.UTF8.GetBytes(adminToken));
            if (!CryptographicOperations.FixedTimeEquals(given, expected))
            {
                return Task.FromResult(Refuse("invalid admin token"));
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Role, AdminScheme)], Scheme.Name);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
        }

        protected override Task HandleChallengeAsync(AuthenticationProperties properties)
        {
            if (Context.GetEndpoint()?.Metadata.GetMetadata<BrowserLogin>() is not null)
            {
                // A browser cannot add a bearer token to a page load, but it asks for Basic credentials and
                // sends them with every request of the page after: any user name, the admin token as password.
                Response.Headers.WWWAuthenticate = "Basic realm=\"LuluClaw admin\", charset=\"UTF-8\"";
            }

            return base.HandleChallengeAsync(properties);
        }

        private AuthenticateResult Refuse(string message)
        {
            Context.Features.Set(new Refusal(message));
            return AuthenticateResult.Fail(message);
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

            try
            {
                var credentials = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(decoded[..length]);
                var colon = credentials.IndexOf(':', StringComparison.Ordinal);
                return colon < 0 ? null : credentials[(colon + 1)..];
            }
            catch (DecoderFallbackException)
            {
                return null;
            }
        }
    }

    /// <summary>Writes authentication's and authorization's refusals in the endpoint's error shape.</summary>
    private sealed class RefusalWriter : IAuthorizationMiddlewareResultHandler
    {
        public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
        {
            if (authorizeResult.Succeeded)
            {
                await next(context);
                return;
            }

            var shape = ErrorShapes.Of(context);
            if (authorizeResult.Challenged)
            {
                foreach (var scheme in policy.AuthenticationSchemes)
                {
                    await context.ChallengeAsync(scheme);
                }

                var message = context.Features.Get<Refusal>()?.Message ?? "authentication required";
                await shape.Result(StatusCodes.Status401Unauthorized, message).ExecuteAsync(context);
                return;
            }

            var scope = authorizeResult.AuthorizationFailure?.FailedRequirements.OfType<ClaimsAuthorizationRequirement>()
                .SelectMany(r => r.AllowedValues ?? []).FirstOrDefault();
            await shape.Result(StatusCodes.Status403Forbidden, scope is null ? "this credential may not use this route" : shape.MissingScope(scope))
                .ExecuteAsync(context);
        }
    }
}

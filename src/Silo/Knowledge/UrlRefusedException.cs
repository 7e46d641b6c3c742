namespace LuluClaw.Silo.Knowledge;

/// <summary>A URL, or the address its host resolved to, that LuluClaw does not fetch (<see cref="UrlGuard"/>).</summary>
/// <param name="message">Why, naming the URL or the host and address, in words a person can act on.</param>
internal sealed class UrlRefusedException(string message) : Exception(message);

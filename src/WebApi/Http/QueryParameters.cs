using Microsoft.AspNetCore.Http;

namespace LuluClaw.WebApi.Http;

/// <summary>Query parameters read strictly: a number is digits only, given once.</summary>
internal static class QueryParameters
{
    /// <summary>The query parameter <paramref name="name"/> as a whole number from <paramref name="min"/> to <paramref name="max"/>; <paramref name="absent"/> if it is not given, null if it is not such a number.</summary>
    public static int? Number(HttpRequest request, string name, int min, int max, int absent)
    {
        if (!request.Query.TryGetValue(name, out var values))
        {
            return absent;
        }

        return values.Count == 1 && int.TryParse(values[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            && n >= min && n <= max ? n : null;
    }
}

using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LuluClaw.Silo.Knowledge;
using Microsoft.Extensions.DependencyInjection;
using UglyToad.PdfPig.Content;
using UglyToad.PdfPig.Core;
using UglyToad.PdfPig.Fonts.Standard14Fonts;
using UglyToad.PdfPig.Writer;

namespace LuluClaw.WebApi.Tests.Apis;

/// <summary>What the knowledge tests send: source bodies, uploads, PDFs, and the ingestion driven to the end.</summary>
internal static class KnowledgeRequests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A JSON body.</summary>
    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>A document source's upload.</summary>
    public static MultipartFormDataContent Upload(string name, string fileName, byte[] content)
    {
        var file = new ByteArrayContent(content);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return new MultipartFormDataContent { { new StringContent("document"), "type" }, { new StringContent(name), "name" }, { file, "file", fileName } };
    }

    /// <summary>A PDF with one page of text per item (an empty item: a page without a text layer).</summary>
    public static byte[] Pdf(params string[] pages)
    {
        var builder = new PdfDocumentBuilder();
        var font = builder.AddStandard14Font(Standard14Font.Helvetica);
        foreach (var text in pages)
        {
            var page = builder.AddPage(PageSize.A4);
            var y = 750.0;
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                page.AddText(line, 12, new PdfPoint(50, y), font);
                y -= 16;
            }
        }

        return builder.Build();
    }

    /// <summary>The body of an answer.</summary>
    public static async Task<JsonElement> BodyAsync(HttpResponseMessage response) => await response.Content.ReadFromJsonAsync<JsonElement>(Ct);

    /// <summary>Adds a source; its id.</summary>
    public static async Task<string> CreateAsync(HttpClient client, HttpContent content) =>
        (await BodyAsync(await client.PostAsync("/api/v1/knowledge-sources", content, Ct))).GetProperty("id").GetString()!;

    /// <summary>A source as the routes show it.</summary>
    public static async Task<JsonElement> SourceAsync(HttpClient client, string id) => await BodyAsync(await client.GetAsync($"/api/v1/knowledge-sources/{id}", Ct));

    /// <summary>Ingests every due source of the app, one after the other; how many.</summary>
    public static async Task<int> IngestAllAsync(LuluClawApp app)
    {
        var ingestion = app.Services.GetRequiredService<KnowledgeIngestion>();
        var count = 0;
        while (await ingestion.IngestNextAsync(Ct))
        {
            count++;
        }

        return count;
    }
}

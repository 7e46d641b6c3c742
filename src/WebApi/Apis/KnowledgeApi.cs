using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using LuluClaw.WebApi.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans;

namespace LuluClaw.WebApi.Apis;

/// <summary>
/// Knowledge sources on the Developer API (<c>/api/v1/knowledge-sources</c>, scope <c>knowledge</c>):
/// websites, uploaded documents and manual entries that the workspace's bots answer from. Adding or
/// changing one only records it (<c>pending</c>); the silos' background ingestion fetches, chunks and
/// embeds it (<c>crawling</c>, then <c>ready</c> or <c>error</c>).
/// </summary>
internal static class KnowledgeApi
{
    /// <summary>Longest source name.</summary>
    public const int MaxNameLength = 200;

    /// <summary>Longest website URL.</summary>
    public const int MaxUrlLength = 2048;

    /// <summary>Most entries of a manual source.</summary>
    public const int MaxEntries = 1000;

    /// <summary>Longest question of a manual entry.</summary>
    public const int MaxQuestionLength = 1000;

    /// <summary>Longest answer of a manual entry.</summary>
    public const int MaxAnswerLength = 20_000;

    /// <summary>Longest free text of a manual source (the JSON body's own cap, 1 MiB, comes first).</summary>
    public const int MaxContentLength = 500_000;

    /// <summary>The default and largest <c>limit</c> of the list.</summary>
    public const int DefaultListLimit = 20, MaxListLimit = 100;

    /// <summary>The default cap of an uploaded document (<c>Knowledge:MaxDocumentBytes</c>).</summary>
    public const long DefaultMaxDocumentBytes = 10 * 1024 * 1024;

    /// <summary>Maps the routes.</summary>
    public static IEndpointRouteBuilder MapKnowledgeApi(this IEndpointRouteBuilder app)
    {
        var maxDocument = app.ServiceProvider.GetRequiredService<IConfiguration>().GetValue("Knowledge:MaxDocumentBytes", DefaultMaxDocumentBytes);
        var sources = app.MapSurface("/api/v1/knowledge-sources", ErrorShapes.Lulu).ValidatesRequests()
            .WithTags("Developer API: knowledge").RequireApiKey(ApiScopes.Knowledge);
        sources.MapPost("/", (HttpContext http, IGrainFactory grains) => CreateAsync(http, grains, maxDocument)).WithName("CreateKnowledgeSource")
            .WithSummary("Add a source: a website or a manual source as JSON, or a document (PDF, plain text, Markdown or HTML) as multipart/form-data "
                + "with the fields 'type' = document, 'name' and 'file'. It is 'pending', then ingested in the background")
            .Accepts<CreateKnowledgeSourceBody>("application/json", "multipart/form-data").TakesUploads(KnowledgeUpload.Describe)
            .Produces<KnowledgeSourceResponse>(StatusCodes.Status201Created);
        sources.MapGet("/", ListAsync).WithName("ListKnowledgeSources").WithSummary("List the workspace's knowledge sources, newest first ('page' from 1, 'limit' up to 100)")
            .Produces<KnowledgeSourceListResponse>().ProducesErrors(StatusCodes.Status400BadRequest);
        sources.MapGet("/{sourceId}", GetAsync).WithName("GetKnowledgeSource").WithSummary("One knowledge source, with its ingestion status");
        sources.MapPatch("/{sourceId}", UpdateAsync).WithName("UpdateKnowledgeSource")
            .WithSummary("Rename a source; for a manual source, replace its entries or content (it is ingested again)");
        sources.MapDelete("/{sourceId}", DeleteAsync).WithName("DeleteKnowledgeSource").WithSummary("Delete a source; its chunks leave retrieval at once");
        sources.MapPost("/{sourceId}/refresh", RefreshAsync).WithName("RefreshKnowledgeSource").WithSummary("Ingest the source again now");
        return app;
    }

    /// <summary>One route for every type: JSON for websites and manual sources, a multipart upload for documents.</summary>
    private static async Task<IResult> CreateAsync(HttpContext http, IGrainFactory grains, long maxDocument)
    {
        if (Uploads.IsUpload(http.Request))
        {
            return await UploadAsync(http, grains, maxDocument);
        }

        // Bound here rather than as a parameter, because the same route takes a form: the body was checked by
        // JsonRequests already, and a field of the wrong type is the same 400 a bound parameter gives.
        CreateKnowledgeSourceBody? body;
        try
        {
            body = await http.Request.ReadFromJsonAsync<CreateKnowledgeSourceBody>(http.RequestAborted);
        }
        catch (JsonException e)
        {
            throw new BadHttpRequestException("the body is not a knowledge source", StatusCodes.Status400BadRequest, e);
        }

        if (body is null)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, "request body must be a JSON object");
        }

        if (RequestValidation.Problem(http, body) is { } problem)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, problem.Message, field: problem.Field);
        }

        var source = await Knowledge(http, grains).CreateAsync(new NewKnowledgeSource(
            body.Type, body.Name.Trim(), body.Url?.Trim(), body.MaxPages, body.MaxDepth, Entries(body.Entries), body.Content), http.RequestAborted);
        return Created(source);
    }

    private static async Task<IResult> UploadAsync(HttpContext http, IGrainFactory grains, long maxDocument)
    {
        if (http.Request.ContentLength > maxDocument + FormOverhead)
        {
            return TooLarge(maxDocument);
        }

        IFormCollection form;
        try
        {
            form = await http.Request.ReadFormAsync(new FormOptions { MultipartBodyLengthLimit = maxDocument + FormOverhead }, http.RequestAborted);
        }
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            return TooLarge(maxDocument);
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, "the multipart/form-data body could not be read: send fields 'type', 'name' and 'file'");
        }

        var type = form["type"].ToString();
        var name = form["name"].ToString().Trim();
        var problem =
            form["type"].Count > 1 || form["name"].Count > 1 ? "send 'type' and 'name' once each"
            : type != KnowledgeTypes.Document ? "'type' must be 'document' for an upload (websites and manual sources are sent as JSON)"
            : name.Length == 0 ? "'name' is required"
            : name.EnumerateRunes().Count() > MaxNameLength ? $"'name' must be at most {MaxNameLength} characters"
            : name.Any(char.IsControl) ? "'name' must not contain control characters"
            : form.Files.Count != 1 || form.Files[0].Name != "file" ? "send exactly one file, in the field 'file'"
            : form.Keys.FirstOrDefault(k => k is not ("type" or "name")) is { } unknown ? $"unknown field '{unknown}'; expected 'type', 'name', 'file'"
            : null;
        if (problem is not null)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, problem);
        }

        var file = form.Files[0];
        if (file.Length > maxDocument)
        {
            return TooLarge(maxDocument);
        }

        if (file.Length == 0)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, "'file' is empty");
        }

        var bytes = new byte[file.Length];
        await using (var stream = file.OpenReadStream())
        {
            await stream.ReadExactlyAsync(bytes, http.RequestAborted);
        }

        if (DocumentTypes.Of(file.FileName, file.ContentType, bytes) is not { } mediaType)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status415UnsupportedMediaType,
                $"'{ErrorHandling.Shown(file.FileName)}' is not a document LuluClaw reads: upload a PDF, plain text (.txt), Markdown (.md) or HTML (.html) file");
        }

        var source = await Knowledge(http, grains).CreateAsync(
            new NewKnowledgeSource(KnowledgeTypes.Document, name, FileName: Path.GetFileName(file.FileName), MediaType: mediaType, File: bytes), http.RequestAborted);
        return Created(source);
    }

    /// <summary>What multipart framing and the small fields may add to the file's own size.</summary>
    private const long FormOverhead = 64 * 1024;

    private static IResult TooLarge(long maxDocument) => ErrorShapes.Lulu.Result(StatusCodes.Status413PayloadTooLarge,
        $"the document is larger than {maxDocument / (1024 * 1024.0):0.#} MB, the most this server takes (Knowledge:MaxDocumentBytes)");

    private static async Task<IResult> ListAsync(HttpContext http, IGrainFactory grains)
    {
        if (QueryParameters.Number(http.Request, "page", 1, int.MaxValue, 1) is not { } page)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, "'page' must be a whole number, 1 or more", field: "page");
        }

        if (QueryParameters.Number(http.Request, "limit", 1, MaxListLimit, DefaultListLimit) is not { } limit)
        {
            return ErrorShapes.Lulu.Result(StatusCodes.Status400BadRequest, $"'limit' must be a whole number from 1 to {MaxListLimit}", field: "limit");
        }

        var offset = (page - 1L) * limit;
        var listed = offset > int.MaxValue
            ? new KnowledgeSourcePage([], 0)
            : await Knowledge(http, grains).ListAsync((int)offset, limit, http.RequestAborted);
        return TypedResults.Json(
            new KnowledgeSourceListResponse([.. listed.Sources.Select(ToResponse)], http.GetCaller().WorkspaceId, new ListMeta(listed.Total, page, limit)),
            LuluJsonContext.Web.KnowledgeSourceListResponse);
    }

    private static async Task<Results<Ok<KnowledgeSourceResponse>, NotFound<ErrorBody>>> GetAsync(string sourceId, HttpContext http, IGrainFactory grains) =>
        await Knowledge(http, grains).GetAsync(sourceId, http.RequestAborted) is { } source ? TypedResults.Ok(ToResponse(source)) : NotFound(sourceId);

    private static async Task<Results<Ok<KnowledgeSourceResponse>, NotFound<ErrorBody>, BadRequest<ErrorBody>>> UpdateAsync(
        string sourceId, UpdateKnowledgeSourceBody body, HttpContext http, IGrainFactory grains)
    {
        var knowledge = Knowledge(http, grains);
        if (body.Entries is not null || body.Content is not null)
        {
            if (await knowledge.GetAsync(sourceId, http.RequestAborted) is not { } existing)
            {
                return NotFound(sourceId);
            }

            if (existing.Type != KnowledgeTypes.Manual)
            {
                return TypedResults.BadRequest(new ErrorBody($"'entries' and 'content' belong to a manual source; this one is a {existing.Type} (refresh it instead)"));
            }
        }

        var updated = await knowledge.UpdateAsync(sourceId, new KnowledgeSourceChanges(
            body.Name?.Trim(), Entries(body.Entries), body.Content), http.RequestAborted);
        return updated is null ? NotFound(sourceId) : TypedResults.Ok(ToResponse(updated));
    }

    private static async Task<Results<NoContent, NotFound<ErrorBody>>> DeleteAsync(string sourceId, HttpContext http, IGrainFactory grains) =>
        await Knowledge(http, grains).DeleteAsync(sourceId, http.RequestAborted) ? TypedResults.NoContent() : NotFound(sourceId);

    private static async Task<Results<Ok<KnowledgeSourceResponse>, NotFound<ErrorBody>>> RefreshAsync(string sourceId, HttpContext http, IGrainFactory grains) =>
        await Knowledge(http, grains).RefreshAsync(sourceId, http.RequestAborted) is { } source ? TypedResults.Ok(ToResponse(source)) : NotFound(sourceId);

    private static IKnowledgeGrain Knowledge(HttpContext http, IGrainFactory grains) =>
        grains.GetGrain<IKnowledgeGrain>(http.GetCaller().WorkspaceId.ToString("D"));

    /// <summary>The 201 of a new source, with its location.</summary>
    private static Created<KnowledgeSourceResponse> Created(KnowledgeSourceInfo source) =>
        TypedResults.Created($"/api/v1/knowledge-sources/{source.Id}", ToResponse(source));

    /// <summary>Checked manual entries (<see cref="CheckEntries"/>), trimmed.</summary>
    private static KnowledgeEntry[]? Entries(IReadOnlyList<KnowledgeEntryBody?>? entries) =>
        entries?.Select(e => new KnowledgeEntry(e!.Question!.Trim(), e.Answer!.Trim())).ToArray();

    private static NotFound<ErrorBody> NotFound(string sourceId) => TypedResults.NotFound(new ErrorBody($"knowledge source '{sourceId}' not found"));

    private static KnowledgeSourceResponse ToResponse(KnowledgeSourceInfo s) => new(
        s.Id, s.WorkspaceId, s.Name, s.Type, s.Url, s.ChunkCount, s.Status, s.CreatedAt, s.UpdatedAt, s.StatusReason, s.LastIngestedAt);

    /// <summary>The 400 message for a website URL that cannot be crawled whatever it points at, or null (its address is checked when it is fetched).</summary>
    internal static string? CheckUrl(string url) =>
        !url.Contains("://", StringComparison.Ordinal) && !url.StartsWith("file:", StringComparison.OrdinalIgnoreCase)
            || !Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) ? "'url' must be an absolute http or https URL"
        : uri.Scheme is not ("http" or "https") ? $"'url' must be http or https, not '{uri.Scheme}'"
        : uri.UserInfo.Length > 0 ? "'url' must not carry a user name or password"
        : null;

    /// <summary>The 400 message for manual entries that cannot be stored, or null.</summary>
    internal static string? CheckEntries(IReadOnlyList<KnowledgeEntryBody?>? entries)
    {
        for (var i = 0; i < (entries?.Count ?? 0); i++)
        {
            var problem = entries![i] switch
            {
                null => $"'entries[{i}]' must be an object with 'question' and 'answer'",
                { Question: var q } when string.IsNullOrWhiteSpace(q) => $"'entries[{i}].question' must not be empty",
                { Answer: var a } when string.IsNullOrWhiteSpace(a) => $"'entries[{i}].answer' must not be empty",
                { Question.Length: > MaxQuestionLength } => $"'entries[{i}].question' must be at most {MaxQuestionLength} characters",
                { Answer.Length: > MaxAnswerLength } => $"'entries[{i}].answer' must be at most {MaxAnswerLength} characters",
                _ => null,
            };
            if (problem is not null)
            {
                return problem;
            }
        }

        return null;
    }
}

/// <summary>Recognises the documents ingestion reads, from the upload's name, declared type and first bytes.</summary>
internal static class DocumentTypes
{
    /// <summary>PDF, plain text, Markdown or HTML: the media type ingestion reads it as, or null for anything else.</summary>
    public static string? Of(string? fileName, string? declaredType, ReadOnlySpan<byte> content)
    {
        if (content.StartsWith("%PDF-"u8))
        {
            return "application/pdf"; // a PDF is a PDF whatever it is called
        }

        var extension = Path.GetExtension(fileName ?? "").ToLowerInvariant();
        var declared = (declaredType ?? "").Split(';')[0].Trim().ToLowerInvariant();
        var type = extension switch
        {
            ".txt" or ".text" => "text/plain",
            ".md" or ".markdown" => "text/markdown",
            ".html" or ".htm" => "text/html",
            ".pdf" => null, // named a PDF but it is not one
            "" => declared switch
            {
                "text/plain" or "text/markdown" or "text/html" => declared,
                _ => null,
            },
            _ => null,
        };
        // Text must be text: a binary file renamed .txt is refused rather than ingested as noise.
        return type is not null && content.IndexOf((byte)0) < 0 && System.Text.Unicode.Utf8.IsValid(content) ? type : null;
    }
}

/// <summary><c>POST /api/v1/knowledge-sources</c> as JSON: a website or a manual source.</summary>
internal sealed record CreateKnowledgeSourceBody(
    [property: Required, AllowedValues(KnowledgeTypes.Website, KnowledgeTypes.Manual, KnowledgeTypes.Document),
        Description("website (with url) or manual (with entries or content); a document is uploaded as multipart/form-data")] string Type,
    [property: Required, StringLength(KnowledgeApi.MaxNameLength, MinimumLength = 1), Description("Display name.")] string Name,
    [property: StringLength(KnowledgeApi.MaxUrlLength, MinimumLength = 1), Description("A website's start URL (http or https).")] string? Url = null,
    [property: Range(1, 1000), Description("A website's page budget; default 50.")] int? MaxPages = null,
    [property: Range(0, 10), Description("How many links deep from the start page; default 2.")] int? MaxDepth = null,
    [property: MaxLength(KnowledgeApi.MaxEntries), Description("A manual source's questions and answers.")] IReadOnlyList<KnowledgeEntryBody?>? Entries = null,
    [property: StringLength(KnowledgeApi.MaxContentLength, MinimumLength = 1), Description("A manual source's free text (instead of entries).")] string? Content = null)
    : IRequestBody
{
    /// <summary>Fields the body had that this type does not know: refused.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }

    /// <inheritdoc />
    public string? Check() => Type switch
    {
        not (KnowledgeTypes.Website or KnowledgeTypes.Manual or KnowledgeTypes.Document) => "'type' must be 'website', 'manual' or 'document'",
        KnowledgeTypes.Document => "a document is uploaded as multipart/form-data with the fields 'type' = document, 'name' and 'file'",
        KnowledgeTypes.Website when Url is null => "'url' is required for a website",
        KnowledgeTypes.Website when Entries is not null || Content is not null => "'entries' and 'content' belong to a manual source, not a website",
        KnowledgeTypes.Website => KnowledgeApi.CheckUrl(Url!),
        KnowledgeTypes.Manual when Url is not null || MaxPages is not null || MaxDepth is not null => "'url', 'max_pages' and 'max_depth' belong to a website, not a manual source",
        KnowledgeTypes.Manual when (Entries is null) == (Content is null) => "a manual source has either 'entries' or 'content' (one of them)",
        KnowledgeTypes.Manual when Entries is { Count: 0 } => "'entries' must not be empty",
        _ => KnowledgeApi.CheckEntries(Entries),
    };
}

/// <summary>One question and answer of a manual source.</summary>
internal sealed record KnowledgeEntryBody(string? Question, string? Answer);

/// <summary><c>PATCH /api/v1/knowledge-sources/{id}</c>: only the fields given change.</summary>
internal sealed record UpdateKnowledgeSourceBody(
    [property: StringLength(KnowledgeApi.MaxNameLength, MinimumLength = 1), Description("Display name.")] string? Name = null,
    [property: MaxLength(KnowledgeApi.MaxEntries), Description("A manual source's new entries (they replace the old ones).")] IReadOnlyList<KnowledgeEntryBody?>? Entries = null,
    [property: StringLength(KnowledgeApi.MaxContentLength, MinimumLength = 1), Description("A manual source's new free text.")] string? Content = null)
    : IRequestBody
{
    /// <summary>Fields the body had that this type does not know: refused.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }

    /// <inheritdoc />
    public string? Check() =>
        Name is null && Entries is null && Content is null ? "nothing to change: send at least one of 'name', 'entries', 'content'"
        : Entries is not null && Content is not null ? "send 'entries' or 'content', not both"
        : Entries is { Count: 0 } ? "'entries' must not be empty"
        : KnowledgeApi.CheckEntries(Entries);
}

/// <summary>The multipart/form-data upload of a document, as the OpenAPI document describes it (the route reads the form itself).</summary>
internal static class KnowledgeUpload
{
    /// <summary>The form's schema: <c>type</c> (<c>document</c>), <c>name</c> and <c>file</c>.</summary>
    public static Microsoft.OpenApi.OpenApiSchema Describe() => new()
    {
        Type = Microsoft.OpenApi.JsonSchemaType.Object,
        Required = new HashSet<string> { "type", "name", "file" },
        Properties = new Dictionary<string, Microsoft.OpenApi.IOpenApiSchema>
        {
            ["type"] = new Microsoft.OpenApi.OpenApiSchema { Type = Microsoft.OpenApi.JsonSchemaType.String, Enum = [System.Text.Json.Nodes.JsonValue.Create(KnowledgeTypes.Document)] },
            ["name"] = new Microsoft.OpenApi.OpenApiSchema { Type = Microsoft.OpenApi.JsonSchemaType.String, MinLength = 1, MaxLength = KnowledgeApi.MaxNameLength },
            ["file"] = new Microsoft.OpenApi.OpenApiSchema
            {
                Type = Microsoft.OpenApi.JsonSchemaType.String, Format = "binary", Description = "PDF, plain text (.txt), Markdown (.md) or HTML (.html); at most Knowledge:MaxDocumentBytes (10 MB by default)",
            },
        },
    };
}

/// <summary>A knowledge source, in the shape of the Insights document, with its ingestion's reason and time.</summary>
/// <param name="Url">A website's start URL; null for documents and manual sources.</param>
/// <param name="ChunkCount">How many chunks retrieval can use.</param>
/// <param name="StatusReason">Why the last ingestion failed, or what it skipped.</param>
internal sealed record KnowledgeSourceResponse(
    string Id,
    Guid WorkspaceId,
    string Name,
    [property: AllowedValues(KnowledgeTypes.Website, KnowledgeTypes.Document, KnowledgeTypes.Manual)] string Type,
    string? Url,
    long ChunkCount,
    [property: AllowedValues(KnowledgeStatus.Pending, KnowledgeStatus.Crawling, KnowledgeStatus.Ready, KnowledgeStatus.Error)] string Status,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string? StatusReason,
    DateTimeOffset? LastIngestedAt);

/// <summary>A page of knowledge sources.</summary>
internal sealed record KnowledgeSourceListResponse(IReadOnlyList<KnowledgeSourceResponse> Data, Guid WorkspaceId, ListMeta Meta);

/// <summary>Where a page of a list stands.</summary>
internal sealed record ListMeta(long Total, int Page, int Limit);

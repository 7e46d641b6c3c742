using LuluClaw.Silo;
using LuluClaw.Silo.Bootstrap;
using LuluClaw.Silo.Storage;
using LuluClaw.WebApi;
using Microsoft.Extensions.Options;

// Settings travel with the binary: appsettings.json is read from beside it, wherever the process is
// started from, while relative paths such as ./data/ stay relative to the working directory.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
if (string.IsNullOrEmpty(builder.Configuration["urls"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
}

builder.Services.AddLuluClaw(builder.Configuration);

var app = builder.Build();
await app.Services.GetRequiredService<SchemaMigrator>().MigrateWhenReachableAsync(app.Lifetime.ApplicationStopping);
await app.Services.GetRequiredService<DemoWorkspace>().SeedAsync(CancellationToken.None);
app.MapLuluClaw();
app.Lifetime.ApplicationStopping.Register(() => app.Logger.LogInformation(
    "Stopping: no new connections; draining the turns and streams in flight for up to {Seconds} s", app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout.TotalSeconds));
app.Run();

/// <summary>The entry point, visible to <c>WebApplicationFactory</c>.</summary>
public partial class Program;

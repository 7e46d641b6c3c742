using LuluClaw.Silo;
using LuluClaw.Silo.Bootstrap;
using LuluClaw.Silo.Hosting;
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
builder.UseOrleans(silo => silo.ConfigureLuluClaw(builder.Configuration));

var app = builder.Build();

// The schema first: on PostgreSQL, Orleans' clustering reads its tables and queries from it as the silo starts.
await app.Services.GetRequiredService<SchemaMigrator>().MigrateWhenReachableAsync(app.Lifetime.ApplicationStopping);
app.MapLuluClaw();
app.Lifetime.ApplicationStopping.Register(() => app.Logger.LogInformation(
    "Stopping: no new connections; draining the turns and streams in flight for up to {Seconds} s", app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout.TotalSeconds));
await app.StartAsync();

// Grains answer once the silo has started.
await app.Services.GetRequiredService<DemoWorkspace>().SeedAsync(app.Lifetime.ApplicationStopping);
await app.WaitForShutdownAsync();

/// <summary>The entry point, visible to <c>WebApplicationFactory</c>.</summary>
public partial class Program;

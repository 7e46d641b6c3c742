using LuluClaw.Grains;
using LuluClaw.Grains.Models;
using LuluClaw.Silo.Bootstrap;
using LuluClaw.Silo.Models;
using LuluClaw.Silo.Security;
using LuluClaw.Silo.Storage;
using LuluClaw.WebApi;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LuluClaw.Silo;

/// <summary>Everything the one LuluClaw process hosts.</summary>
public static class LuluClawServiceCollectionExtensions
{
    /// <summary>
    /// Adds what the grains and the front end need: storage, model providers and configuration. The
    /// grains themselves run on the Orleans silo that <c>UseOrleans</c> adds (<see cref="Hosting.LuluSilo"/>).
    /// </summary>
    public static IServiceCollection AddLuluClaw(this IServiceCollection services, IConfiguration configuration)
    {
        // SIGTERM (or Ctrl+C): stop accepting, let the turns and streams in flight finish for up to
        // Shutdown:DrainSeconds, then stop. A turn cut off by the deadline is not stored; its admission is
        // refunded, by the reaper on another start or node if this process is gone first.
        services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(configuration.GetValue("Shutdown:DrainSeconds", 30.0)));
        services.AddOptions<PlanOptions>().Bind(configuration.GetSection("Plans")).PostConfigure(plans =>
        {
            foreach (var (name, plan) in PlanOptions.Defaults)
            {
                plans.Workspace.TryAdd(name, plan);
            }

            foreach (var (name, plan) in PlanOptions.KeyDefaults)
            {
                plans.Key.TryAdd(name, plan);
            }
        });
        services.AddOptions<ModelCallOptions>().Bind(configuration.GetSection("Llm"));
        services.AddOptions<LlmOptions>().Bind(configuration.GetSection("Llm"));
        services.AddOptions<Knowledge.KnowledgeOptions>().Bind(configuration.GetSection("Knowledge"));
        services.TryAddSingleton<Knowledge.ITextEmbedder, Knowledge.MiniLmEmbedder>();
        services.AddSingleton<Knowledge.KnowledgeIngestion>();
        services.AddSingleton<Knowledge.KnowledgeVectorCache>();
        services.AddSingleton<Knowledge.KnowledgeRetriever>();
        services.AddSingleton<Grains.Knowledge.IKnowledgeLookup, Knowledge.KnowledgeLookup>();
        services.AddSingleton<Grains.Knowledge.IKnowledgeIngestionSignal>(sp => sp.GetRequiredService<Knowledge.KnowledgeIngestion>());
        services.AddHostedService(sp => sp.GetRequiredService<Knowledge.KnowledgeIngestion>());

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<WorkspaceTurns>();
        services.AddLuluStorage(configuration);
        services.AddLuluDataProtection(configuration);
        services.AddLuluWebApi();
        services.AddSingleton<ChatClientProvider>();
        services.AddSingleton<IChatClientProvider>(sp => sp.GetRequiredService<ChatClientProvider>());
        services.AddSingleton<IPlanCatalog, PlanCatalog>();
        services.AddSingleton<DemoWorkspace>();
        return services;
    }
}

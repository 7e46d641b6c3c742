using LuluClaw.Actors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LuluClaw.Silo.Runtime;

/// <summary>Registers the actor host.</summary>
public static class ActorServiceCollectionExtensions
{
    /// <summary>Adds the runtime, its collector and the <see cref="IGrainFactory"/>.</summary>
    public static IServiceCollection AddActorRuntime(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<GrainTypeMap>();
        services.TryAddSingleton<GrainRuntime>();
        services.TryAddSingleton<IGrainFactory>(sp => sp.GetRequiredService<GrainRuntime>());
        services.AddHostedService<ActivationCollector>();
        return services;
    }

    /// <summary>Makes <typeparamref name="TImplementation"/> the actor behind <typeparamref name="TGrain"/>.</summary>
    public static IServiceCollection AddGrain<TGrain, TImplementation>(this IServiceCollection services)
        where TGrain : class, IGrainWithStringKey
        where TImplementation : class, TGrain
    {
        services.AddSingleton(new GrainRegistration(typeof(TGrain), typeof(TImplementation)));
        return services;
    }
}

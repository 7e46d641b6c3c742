using System.Net;
using System.Net.Sockets;

namespace LuluClaw.Tests;

/// <summary>Free loopback ports, so that many silos and servers run side by side in one test run.</summary>
public static class TestPorts
{
    /// <summary>A port nothing listens on right now (the system's pick for port 0).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Configuration that gives a silo its own silo and gateway ports.</summary>
    public static Dictionary<string, string?> Silo() => new()
    {
        ["Cluster:SiloPort"] = Free().ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Cluster:GatewayPort"] = Free().ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

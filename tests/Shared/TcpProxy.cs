using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace LuluClaw.Tests;

/// <summary>How a <see cref="TcpProxy"/> treats connections.</summary>
public enum ProxyMode
{
    /// <summary>Bytes flow both ways.</summary>
    Forward,

    /// <summary>Every connection is cut and new ones are refused: the server is down.</summary>
    Refuse,

    /// <summary>Every connection is cut; new ones are accepted and never answered: the network swallows packets.</summary>
    Blackhole,
}

/// <summary>
/// A TCP relay on 127.0.0.1 in front of a real server (PostgreSQL, here), standing in for the
/// network between a node and its database so a test can take the database away and bring it back.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private Socket? _listener;
    private Task _accepting = Task.CompletedTask;

    private TcpProxy(IPEndPoint target, int port)
    {
        _target = target;
        Port = port;
    }

    /// <summary>The port the proxy listens on.</summary>
    public int Port { get; }

    /// <summary>The current mode.</summary>
    public ProxyMode Mode { get; private set; } = ProxyMode.Forward;

    /// <summary>Starts a forwarding proxy to <paramref name="host"/>:<paramref name="port"/>.</summary>
    public static TcpProxy Start(string host, int port)
    {
        var target = new IPEndPoint(IPAddress.Parse(host == "localhost" ? "127.0.0.1" : host), port);
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var own = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var proxy = new TcpProxy(target, own);
        proxy.Listen();
        return proxy;
    }

    /// <summary>Changes the mode; leaving <see cref="ProxyMode.Forward"/> cuts every open connection.</summary>
    public void Set(ProxyMode mode)
    {
        lock (_gate)
        {
            if (mode == Mode)
            {
                return;
            }

            Mode = mode;
            if (mode != ProxyMode.Forward)
            {
                foreach (var socket in _open.Keys)
                {
                    Close(socket);
                }
            }

            if (mode == ProxyMode.Refuse)
            {
                _listener?.Close();
                _listener = null;
            }
            else if (_listener is null)
            {
                Listen();
            }
        }
    }

    private void Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, Port));
        listener.Listen(512);
        _listener = listener;
        _accepting = AcceptAsync(listener);
    }

    private async Task AcceptAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token);
            }
            catch (Exception)
            {
                return; // closed
            }

            _open[client] = 0;
            if (Mode == ProxyMode.Blackhole)
            {
                continue; // held open, never answered, cut when the mode changes
            }

            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(Socket client)
    {
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _open[server] = 0;
        try
        {
            await server.ConnectAsync(_target, _stop.Token);
            await Task.WhenAny(PumpAsync(client, server), PumpAsync(server, client));
        }
        catch (Exception)
        {
            // a cut connection: both ends close below
        }
        finally
        {
            Close(client);
            Close(server);
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
            if (read == 0)
            {
                return;
            }

            await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
        }
    }

    private void Close(Socket socket)
    {
        if (_open.TryRemove(socket, out _))
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }

            socket.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        lock (_gate)
        {
            _listener?.Close();
            foreach (var socket in _open.Keys)
            {
                Close(socket);
            }
        }

        await _accepting;
        _stop.Dispose();
    }
}

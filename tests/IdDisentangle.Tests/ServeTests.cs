using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using IdDisentangle.Cli.Serve;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;

namespace IdDisentangle.Tests;

/// <summary>
/// The HTTP API of <c>iddis serve</c> in process (ASP.NET Core's TestServer) on the tiny trained run: every
/// documented answer, the queue, a client that goes away.
/// </summary>
[Collection("console")]
public sealed class ServeTests : IAsyncLifetime
{
    static string Photos => TestPaths.Data("photos-unaligned");

    WebApplication? _app;
    SwapService? _service;
    HttpClient _client = null!;
    readonly List<string> _log = [];

    static readonly ServeLimits Limits = new()
    {
        MaxUploadMb = 1,
        MaxPixels = 1_000_000,
        MaxQueue = 1,
    };

    public async Task InitializeAsync()
    {
        if (!TestModels.HasFaceApi)
            return;
        var model = DisentanglementModel.FromRun(InferenceTests.Trained.Value.Run, "last", device: "cpu");
        _service = new SwapService(model, Limits.MaxQueue, AlignmentLandmarks.FaceApi, null);
        _app = SwapServer.Build(
            _service,
            Limits,
            line =>
            {
                lock (_log)
                    _log.Add(line);
            },
            b => b.WebHost.UseTestServer()
        );
        await _app.StartAsync();
        _client = _app.GetTestClient();
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
            await _app.DisposeAsync();
        _service?.Dispose();
    }

    static ByteArrayContent File(string path) =>
        new(System.IO.File.ReadAllBytes(path)) { Headers = { ContentType = new MediaTypeHeaderValue("image/jpeg") } };

    static MultipartFormDataContent Form(params (string Field, HttpContent Content)[] parts)
    {
        var form = new MultipartFormDataContent();
        foreach (var (field, content) in parts)
            if (content is StringContent)
                form.Add(content, field);
            else
                form.Add(content, field, "upload.bin"); // the uploaded name is never used
        return form;
    }

    static async Task<string> Error(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("error").GetString()!;
    }

    static Tensor Png(byte[] bytes) => ImageIO.Decode(bytes, "response");

    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task ThePageAndHealthAnswer()
    {
        Skip.IfNot(TestModels.HasFaceApi, "face-api weights are not in the model store");
        Assert.Equal("ok", await _client.GetStringAsync("/healthz"));
        string page = await _client.GetStringAsync("/");
        Assert.Contains("<button id=\"swap\"", page);
        Assert.DoesNotContain("src=\"http", page); // everything served locally, no CDN
        Assert.DoesNotContain("href=\"http", page);
    }

    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task SwapsAlignsAndInterpolates()
    {
        Skip.IfNot(TestModels.HasFaceApi, "face-api weights are not in the model store");
        string id = Path.Combine(Photos, "DST_01.jpg"),
            attr = Path.Combine(Photos, "DST_02.jpg");
        using var scope = NewDisposeScope();
        var swap = await _client.PostAsync("/api/swap", Form(("id", File(id)), ("attr", File(attr))));
        Assert.Equal(HttpStatusCode.OK, swap.StatusCode);
        Assert.Equal("image/png", swap.Content.Headers.ContentType?.MediaType);
        Assert.Equal(ImageIO.Read(attr).shape, Png(await swap.Content.ReadAsByteArrayAsync()).shape); // pasted back
        var crop = await _client.PostAsync("/api/swap?crop=1", Form(("id", File(id)), ("attr", File(attr))));
        Assert.Equal(new long[] { 3, 64, 64 }, Png(await crop.Content.ReadAsByteArrayAsync()).shape);
        var aligned = await _client.PostAsync("/api/align", Form(("image", File(id))));
        Assert.Equal(new long[] { 3, 64, 64 }, Png(await aligned.Content.ReadAsByteArrayAsync()).shape);

        MultipartFormDataContent Interpolation(string steps) =>
            Form(
                ("id", File(id)),
                ("attr", File(attr)),
                ("id2", File(Path.Combine(Photos, "Iron_man.jpg"))),
                ("steps", new StringContent(steps))
            );
        var strip = await _client.PostAsync("/api/interpolate", Interpolation("4"));
        Assert.Equal(HttpStatusCode.OK, strip.StatusCode);
        Assert.Equal(64, Png(await strip.Content.ReadAsByteArrayAsync()).shape[1] - 4);
        var zip = await _client.PostAsync("/api/interpolate?frames=1", Interpolation("3"));
        using (var archive = new ZipArchive(await zip.Content.ReadAsStreamAsync()))
            Assert.Equal(["frame_00.png", "frame_01.png", "frame_02.png"], archive.Entries.Select(e => e.Name));
        var json = await _client.PostAsync("/api/interpolate?format=json", Interpolation("5"));
        using (var doc = JsonDocument.Parse(await json.Content.ReadAsStringAsync()))
            Assert.Equal(5, doc.RootElement.GetProperty("frames").GetArrayLength());
        lock (_log)
            Assert.Contains(_log, l => l.StartsWith("POST /api/swap 200", StringComparison.Ordinal));
    }

    /// <summary>Bad input is a JSON error naming the field, with the documented status; never a 500.</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task BadInputGetsTheDocumentedErrors()
    {
        Skip.IfNot(TestModels.HasFaceApi, "face-api weights are not in the model store");
        string attr = Path.Combine(Photos, "DST_02.jpg");
        var text = new ByteArrayContent("not an image"u8.ToArray());
        var r = await _client.PostAsync("/api/swap", Form(("id", text), ("attr", File(attr))));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.StartsWith("id: ", await Error(r));

        r = await _client.PostAsync("/api/swap", Form(("id", File(attr))));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("attr: missing image field", await Error(r));

        using (var scope = NewDisposeScope())
        {
            var grey = ImageIO.Encode(full(3, 80, 80, 0.5f));
            r = await _client.PostAsync("/api/swap", Form(("id", new ByteArrayContent(grey)), ("attr", File(attr))));
            Assert.Equal((HttpStatusCode)422, r.StatusCode);
            Assert.Equal("id: no face found in the image", await Error(r));

            var large = ImageIO.Encode(full(3, 1100, 1100, 0.5f)); // 1,210,000 pixels, a small file
            r = await _client.PostAsync("/api/swap", Form(("id", File(attr)), ("attr", new ByteArrayContent(large))));
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
            Assert.Contains("attr: image is 1100x1100", await Error(r));
        }

        var big = new ByteArrayContent(new byte[1_500_000]);
        r = await _client.PostAsync("/api/swap", Form(("id", big), ("attr", File(attr))));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
        Assert.Contains("more than the 1 MB allowed", await Error(r));

        r = await _client.PostAsync(
            "/api/interpolate",
            Form(("id", File(attr)), ("attr", File(attr)), ("attr2", File(attr)), ("steps", new StringContent("99")))
        );
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.StartsWith("steps: ", await Error(r));
        r = await _client.PostAsync("/api/interpolate", Form(("id", File(attr)), ("attr", File(attr))));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("attr2", await Error(r));

        r = await _client.PostAsync("/api/swap", new StringContent("id=1"));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        lock (_log)
            Assert.DoesNotContain(_log, l => l.Contains(" 500 ", StringComparison.Ordinal));
    }

    /// <summary>
    /// One computes and one waits (--max-queue 1): a third is answered 503 with Retry-After at once; a waiting
    /// client that goes away frees its place.
    /// </summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task TheQueueIsBoundedAndFreedByDisconnects()
    {
        Skip.IfNot(TestModels.HasFaceApi, "face-api weights are not in the model store");
        string photo = Path.Combine(Photos, "DST_02.jpg");
        using var gate = new ManualResetEventSlim();
        var busy = _service!.InTurn(() => gate.Wait(TimeSpan.FromMinutes(2)), CancellationToken.None);

        using var leaving = new CancellationTokenSource();
        var waiting = _client.PostAsync("/api/align", Form(("image", File(photo))), leaving.Token);
        await Task.Delay(300);
        var refused = await _client.PostAsync("/api/align", Form(("image", File(photo))));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("5", refused.Headers.GetValues("Retry-After").Single());
        Assert.Contains("busy", await Error(refused));

        leaving.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await Task.Delay(300);
        var next = _client.PostAsync("/api/align", Form(("image", File(photo))));
        await Task.Delay(300);
        gate.Set();
        await busy;
        Assert.Equal(HttpStatusCode.OK, (await next).StatusCode);
    }
}

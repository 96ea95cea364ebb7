using System.Net;
using System.Net.Http.Headers;
using IdDisentangle.Cli.Serve;
using IdDisentangle.Faces;
using IdDisentangle.Inference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace IdDisentangle.Tests;

/// <summary>
/// <c>iddis serve</c>'s server on a real loopback port: the page performs a swap in Debian's Chromium (driven by
/// Playwright, whose own browser download cannot run here), and a bounded load of concurrent clients.
/// </summary>
[Collection("console")]
public sealed class ServeBrowserTests(ITestOutputHelper output) : IAsyncLifetime
{
    static string Photos => TestPaths.Data("photos-unaligned");

    WebApplication? _app;
    SwapService? _service;
    string _url = "";
    int _errors;

    public async Task InitializeAsync()
    {
        if (!TestModels.HasFaceApi)
            return;
        var model = DisentanglementModel.FromRun(InferenceTests.Trained.Value.Run, "last", device: "cpu");
        _service = new SwapService(model, maxQueue: 8, AlignmentLandmarks.FaceApi, null);
        _app = SwapServer.Build(
            _service,
            new ServeLimits(),
            line =>
            {
                if (
                    line.Contains(" 500 ", StringComparison.Ordinal)
                    || line.StartsWith("error:", StringComparison.Ordinal)
                )
                    Interlocked.Increment(ref _errors);
            },
            b => b.WebHost.UseUrls("http://127.0.0.1:0")
        );
        await _app.StartAsync();
        _url = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
            await _app.DisposeAsync();
        _service?.Dispose();
    }

    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    [Trait("Category", TestCategories.External)]
    public async Task ThePageSwapsAFaceInChromium()
    {
        Skip.IfNot(TestModels.HasFaceApi, "face-api weights are not in the model store");
        string chromium = ExternalTools.RequireChromium();
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(
            new()
            {
                ExecutablePath = chromium,
                Headless = true,
                Args = ["--no-sandbox"],
            }
        );
        var page = await browser.NewPageAsync();
        var failed = new List<string>();
        page.RequestFailed += (_, r) => failed.Add(r.Url);
        await page.GotoAsync(_url);
        await page.SetInputFilesAsync("#id", Path.Combine(Photos, "DST_01.jpg"));
        await page.SetInputFilesAsync("#attr", Path.Combine(Photos, "DST_02.jpg"));
        await page.ClickAsync("#swap");
        await page.WaitForFunctionAsync(
            "() => document.getElementById('status').textContent === 'Done.' || document.getElementById('error').textContent",
            null,
            new() { Timeout = 180_000 }
        );
        Assert.Equal("", await page.TextContentAsync("#error"));
        // The result decoded at the attribute photo's size (pasted back); the aligned faces and the slider's frames too.
        Assert.Equal(640, await page.EvaluateAsync<int>("() => document.getElementById('result').naturalWidth"));
        Assert.Equal(64, await page.EvaluateAsync<int>("() => document.getElementById('id-face').naturalWidth"));
        await page.EvaluateAsync(
            "() => { const s = document.getElementById('slider'); s.value = 0; s.dispatchEvent(new Event('input')); }"
        );
        await page.WaitForFunctionAsync("() => document.getElementById('frame').complete");
        Assert.Equal(64, await page.EvaluateAsync<int>("() => document.getElementById('frame').naturalWidth"));
        Assert.Empty(failed);
        string shot = Path.Combine(TestPaths.NewTempDir(), "page.png");
        await page.ScreenshotAsync(new() { Path = shot, FullPage = true });
        output.WriteLine($"screenshot: {shot}");
        Console.WriteLine($"screenshot: {shot}");

        // An error is shown in words.
        await page.SetInputFilesAsync(
            "#id",
            new FilePayload
            {
                Name = "notes.txt",
                MimeType = "text/plain",
                Buffer = "no face here"u8.ToArray(),
            }
        );
        await page.ClickAsync("#swap");
        await page.WaitForFunctionAsync(
            "() => document.getElementById('error').textContent",
            null,
            new() { Timeout = 60_000 }
        );
        Assert.StartsWith("Could not swap: image: ", await page.TextContentAsync("#error"));
    }

    /// <summary>40 swaps from 8 concurrent clients: each answer 200 or 503, none 500, healthy afterwards.</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    public async Task ABoundedLoadGetsNoServerErrors()
    {
        Skip.IfNot(TestModels.HasFaceApi, "face-api weights are not in the model store");
        using var client = new HttpClient { BaseAddress = new Uri(_url), Timeout = TimeSpan.FromMinutes(5) };
        byte[] id = File.ReadAllBytes(Path.Combine(Photos, "DST_01.jpg")),
            attr = File.ReadAllBytes(Path.Combine(Photos, "DST_02.jpg"));
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Task.WhenAll(
            Enumerable
                .Range(0, 8)
                .Select(async _ =>
                {
                    for (int i = 0; i < 5; i++)
                    {
                        using var form = new MultipartFormDataContent();
                        form.Add(
                            new ByteArrayContent(id) { Headers = { ContentType = new("image/jpeg") } },
                            "id",
                            "a.jpg"
                        );
                        form.Add(
                            new ByteArrayContent(attr) { Headers = { ContentType = new("image/jpeg") } },
                            "attr",
                            "b.jpg"
                        );
                        using var response = await client.PostAsync("/api/swap?crop=1", form);
                        statuses.Add(response.StatusCode);
                    }
                })
        );
        var counts = statuses.GroupBy(s => s).ToDictionary(g => g.Key, g => g.Count());
        string summary =
            $"40 swaps, 8 clients: {string.Join(", ", counts.Select(c => $"{(int)c.Key} x{c.Value}"))} in "
            + $"{clock.Elapsed.TotalSeconds:F1} s; peak working set {Environment.WorkingSet >> 20} MiB now, "
            + $"{System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB at most (the test host)";
        output.WriteLine(summary);
        Console.WriteLine(summary);
        Assert.Equal(40, statuses.Count);
        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{s}"));
        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.Equal(0, _errors);
        Assert.Equal("ok", await client.GetStringAsync("/healthz"));
    }
}

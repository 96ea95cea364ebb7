using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using IdDisentangle.Imaging;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IdDisentangle.Cli.Serve;

/// <summary>The limits of <c>iddis serve</c>.</summary>
internal sealed record ServeLimits
{
    /// <summary>Largest request body, in MiB; larger ones are refused from their Content-Length.</summary>
    public int MaxUploadMb { get; init; } = 20;

    /// <summary>Largest image, in pixels, as its header claims it.</summary>
    public long MaxPixels { get; init; } = 40_000_000;

    /// <summary>Requests that may wait while one computes.</summary>
    public int MaxQueue { get; init; } = 8;

    /// <summary>Most frames an interpolation may ask for.</summary>
    public int MaxSteps { get; init; } = 32;
}

/// <summary>
/// The HTTP front end of the model: the page at /, /healthz, and the JSON-erroring API (/api/swap, /api/align,
/// /api/interpolate). Uploads are decoded in memory and never written; nothing is stored.
/// </summary>
internal static class SwapServer
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    public static WebApplication Build(
        SwapService service,
        ServeLimits limits,
        Action<string> log,
        Action<WebApplicationBuilder>? configure = null
    )
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        long maxBody = (long)limits.MaxUploadMb << 20;
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = maxBody);
        builder.Services.Configure<FormOptions>(f =>
        {
            f.MultipartBodyLengthLimit = maxBody;
            f.ValueCountLimit = 16;
        });
        configure?.Invoke(builder);
        var app = builder.Build();

        // One line per request; and every refusal as JSON naming what is wrong.
        app.Use(
            async (context, next) =>
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    if (context.Request.ContentLength > maxBody)
                        throw new RequestException(
                            413,
                            $"the upload is {context.Request.ContentLength} bytes, more than the {limits.MaxUploadMb} MB allowed"
                        );
                    await next(context);
                }
                catch (Exception e) when (Refusal(e, limits) is var (status, message) && !context.Response.HasStarted)
                {
                    context.Response.Clear();
                    context.Response.StatusCode = status;
                    if (status == 503)
                        context.Response.Headers.RetryAfter = "5";
                    await context.Response.WriteAsJsonAsync(new { error = message }, Json);
                }
                catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
                {
                    // The client went away; its place in the queue is already free.
                }
                catch (Exception e) when (!context.Response.HasStarted)
                {
                    // A bug, not bad input: said as such, and logged whole.
                    log($"error: {e}");
                    context.Response.Clear();
                    context.Response.StatusCode = 500;
                    await context.Response.WriteAsJsonAsync(new { error = $"internal error: {e.Message}" }, Json);
                }
                log(
                    $"{context.Request.Method} {context.Request.Path}{context.Request.QueryString} "
                        + $"{context.Response.StatusCode} {clock.ElapsedMilliseconds} ms"
                );
            }
        );

        app.MapGet("/", () => Results.Content(Page(), "text/html; charset=utf-8"));
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapPost(
            "/api/swap",
            async (HttpContext context) =>
            {
                var form = await ReadForm(context);
                var id = ReadImage(form, "id", limits);
                var attr = ReadImage(form, "attr", limits);
                bool crop = context.Request.Query["crop"] == "1";
                var png = await service.InTurn(() => service.Swap(id, attr, crop), context.RequestAborted);
                return Results.Bytes(png, "image/png");
            }
        );
        app.MapPost(
            "/api/align",
            async (HttpContext context) =>
            {
                var form = await ReadForm(context);
                var image = ReadImage(form, "image", limits);
                var png = await service.InTurn(() => service.Align(image, "image"), context.RequestAborted);
                return Results.Bytes(png, "image/png");
            }
        );
        app.MapPost(
            "/api/interpolate",
            async (HttpContext context) =>
            {
                var form = await ReadForm(context);
                var id = ReadImage(form, "id", limits);
                var attr = ReadImage(form, "attr", limits);
                bool byIdentity = form.Files.GetFile("id2") is not null;
                if (byIdentity == (form.Files.GetFile("attr2") is not null))
                    throw new RequestException(
                        400,
                        "give either attr2 (attributes) or id2 (identity) to interpolate to"
                    );
                var other = ReadImage(form, byIdentity ? "id2" : "attr2", limits);
                string stepsText = form["steps"].FirstOrDefault() ?? "9";
                if (!int.TryParse(stepsText, out int steps) || steps < 2 || steps > limits.MaxSteps)
                    throw new RequestException(
                        400,
                        $"steps: '{stepsText}' is not a number from 2 to {limits.MaxSteps}"
                    );
                var to = byIdentity ? (other, attr) : (id, other);
                var frames = await service.InTurn(
                    () => service.Interpolate((id, attr), to, steps),
                    context.RequestAborted
                );
                var query = context.Request.Query;
                if (query["format"] == "json")
                    return Results.Json(
                        new { frames = frames.Select(f => "data:image/png;base64," + Convert.ToBase64String(f)) },
                        Json
                    );
                if (query["frames"] == "1")
                    return Results.Bytes(Zip(frames), "application/zip", "frames.zip");
                return Results.Bytes(SwapService.Strip(frames), "image/png");
            }
        );
        return app;
    }

    /// <summary>The status and message of a refused request; null for a bug, which stays a 500.</summary>
    static (int, string)? Refusal(Exception e, ServeLimits limits) =>
        e switch
        {
            RequestException r => (r.Status, r.Message),
            BadHttpRequestException { StatusCode: 413 } => (
                413,
                $"the upload is more than the {limits.MaxUploadMb} MB allowed"
            ),
            BadHttpRequestException b => (b.StatusCode, b.Message),
            InvalidDataException d when d.Message.Contains("Multipart", StringComparison.OrdinalIgnoreCase) => (
                413,
                $"the upload is more than the {limits.MaxUploadMb} MB allowed"
            ),
            InvalidDataException => (400, e.Message),
            IOException => (400, e.Message),
            _ => ((int, string)?)null,
        };

    static async Task<IFormCollection> ReadForm(HttpContext context)
    {
        if (!context.Request.HasFormContentType)
            throw new RequestException(400, "send the images as multipart/form-data fields");
        return await context.Request.ReadFormAsync(context.RequestAborted);
    }

    /// <summary>An uploaded image, decoded in memory (its file name is never used); the field names it in errors.</summary>
    static InputImage ReadImage(IFormCollection form, string field, ServeLimits limits)
    {
        var file = form.Files.GetFile(field) ?? throw new RequestException(400, $"{field}: missing image field");
        using var stream = file.OpenReadStream();
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        try
        {
            return new InputImage(field, field, ImageIO.Decode(buffer.ToArray(), field, limits.MaxPixels));
        }
        catch (ImageDecodeException e)
        {
            throw new RequestException(e.Problem == ImageProblem.TooLarge ? 413 : 400, e.Message);
        }
    }

    static byte[] Zip(IReadOnlyList<byte[]> frames)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
            for (int i = 0; i < frames.Count; i++)
            {
                using var entry = zip.CreateEntry($"frame_{i:00}.png", CompressionLevel.NoCompression).Open();
                entry.Write(frames[i]);
            }
        return buffer.ToArray();
    }

    static string Page()
    {
        using var stream =
            typeof(SwapServer).Assembly.GetManifestResourceStream("IdDisentangle.Cli.Serve.page.html")
            ?? throw new InvalidOperationException("the page is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}

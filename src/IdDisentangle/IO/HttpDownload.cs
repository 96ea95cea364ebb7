using System.Net;
using System.Net.Http.Headers;

namespace IdDisentangle.IO;

/// <summary>How far one download has come; <see cref="Total"/> is null while the server has not said.</summary>
internal readonly record struct DownloadProgress(string Url, long Received, long? Total);

/// <summary>
/// An IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool, out of order).
/// </summary>
internal sealed class ImmediateProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

/// <summary>A download that failed for good (not found, refused, or still failing after the retries).</summary>
internal sealed class DownloadException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>Tuning of <see cref="HttpDownload"/>; the defaults suit model files of a few hundred MB.</summary>
internal sealed record DownloadOptions
{
    /// <summary>Attempts in all, each continuing where the previous one stopped.</summary>
    public int Attempts { get; init; } = 5;

    /// <summary>Wait before the second attempt; doubled for each further one.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A connection that delivers nothing for this long is dropped and retried.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// Downloads a file over HTTP(S) with .NET's own client. The bytes go to <c>DESTINATION.part</c>, which is renamed
/// to the destination only when the server's length is reached; a partial file left by an interrupted attempt (or an
/// earlier run) is continued with a range request. Connection failures, stalls, 5xx, 408 and 429 answers are
/// retried; other 4xx answers are final. Checking the content (a pinned hash) is the caller's job.
/// </summary>
internal static class HttpDownload
{
    static readonly HttpClient Client = new(
        new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None }
    )
    {
        Timeout = Timeout.InfiniteTimeSpan,
        DefaultRequestHeaders = { { "User-Agent", "IdDisentangle" } },
    };

    public static string PartialPath(string destination) => destination + ".part";

    public static void Download(
        string url,
        string destination,
        IProgress<DownloadProgress>? progress = null,
        DownloadOptions? options = null,
        CancellationToken cancellation = default
    )
    {
        options ??= new DownloadOptions();
        string part = PartialPath(destination);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        Exception? last = null;
        for (int attempt = 1; attempt <= options.Attempts; attempt++)
        {
            if (attempt > 1)
            {
                var delay = options.RetryDelay * Math.Pow(2, attempt - 2);
                if (cancellation.WaitHandle.WaitOne(delay))
                    cancellation.ThrowIfCancellationRequested();
            }
            try
            {
                if (TryOnce(url, part, progress, options, cancellation))
                {
                    File.Move(part, destination, overwrite: true);
                    return;
                }
            }
            catch (Exception e) when (IsTransient(e, cancellation))
            {
                last = e;
            }
        }
        long kept = File.Exists(part) ? new FileInfo(part).Length : 0;
        throw new DownloadException(
            $"{url}: download failed after {options.Attempts} attempts ({last?.Message})"
                + (kept > 0 ? $"; the {kept} bytes received are kept in {part} and the next try continues there" : ""),
            last
        );
    }

    static bool IsTransient(Exception e, CancellationToken cancellation) =>
        e is HttpRequestException or TransientHttpException
        || (e is IOException and not DownloadException)
        || (e is OperationCanceledException && !cancellation.IsCancellationRequested);

    sealed class TransientHttpException(string message) : Exception(message);

    /// <summary>One request; true when the file is complete, false when it should be asked for again.</summary>
    static bool TryOnce(
        string url,
        string part,
        IProgress<DownloadProgress>? progress,
        DownloadOptions options,
        CancellationToken cancellation
    )
    {
        long have = File.Exists(part) ? new FileInfo(part).Length : 0;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (have > 0)
            request.Headers.Range = new RangeHeaderValue(have, null);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        stall.CancelAfter(options.StallTimeout);
        using var response = Client.Send(request, HttpCompletionOption.ResponseHeadersRead, stall.Token);
        int status = (int)response.StatusCode;
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
        {
            // Either the partial file is already whole, or it belongs to another file: decide by the server's length.
            long? total = response.Content.Headers.ContentRange?.Length;
            if (total == have)
                return true;
            File.Delete(part);
            return false;
        }
        if (status >= 500 || status is 408 or 429)
            throw new TransientHttpException($"HTTP {status} {response.ReasonPhrase}");
        if (!response.IsSuccessStatusCode)
            throw new DownloadException($"{url}: HTTP {status} {response.ReasonPhrase}");

        bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
        if (resumed && response.Content.Headers.ContentRange?.From != have)
        {
            File.Delete(part); // a range we did not ask for: start over
            return false;
        }
        if (!resumed)
            have = 0; // the server ignored the range and sends everything
        long? length = response.Content.Headers.ContentLength;
        long? expected = resumed ? response.Content.Headers.ContentRange?.Length ?? have + length : length;

        using (var body = response.Content.ReadAsStream(stall.Token))
        using (
            var output = new FileStream(
                part,
                resumed ? FileMode.Append : FileMode.Create,
                FileAccess.Write,
                FileShare.None
            )
        )
        {
            var buffer = new byte[1 << 16];
            progress?.Report(new DownloadProgress(url, have, expected));
            while (true)
            {
                stall.CancelAfter(options.StallTimeout);
                int n = body.ReadAsync(buffer, stall.Token).AsTask().GetAwaiter().GetResult();
                if (n == 0)
                    break;
                output.Write(buffer, 0, n);
                have += n;
                progress?.Report(new DownloadProgress(url, have, expected));
            }
            output.Flush(flushToDisk: true);
        }
        if (expected is long total2 && have < total2)
            throw new IOException($"connection closed at {have} of {total2} bytes");
        return true;
    }
}

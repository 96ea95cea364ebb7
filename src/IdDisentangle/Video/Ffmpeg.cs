using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace IdDisentangle.Video;

/// <summary>A video file ffmpeg could not read, or could not write: the message names the file and ffmpeg's
/// reason.</summary>
internal sealed class VideoFileException(string path, string problem) : IOException($"{path}: {problem}")
{
    public string FilePath { get; } = path;
}

/// <summary>ffmpeg or ffprobe is not installed where we look.</summary>
internal sealed class FfmpegMissingException(string tool)
    : FileNotFoundException(
        $"{tool} was not found on PATH: video needs FFmpeg (Debian/Ubuntu: apt-get install ffmpeg), "
            + $"or set {Ffmpeg.DirectoryVariable} to the folder that holds {tool}"
    );

/// <summary>
/// What ffprobe says of a video's first video stream and whether it has sound. Width and height are as displayed
/// (rotation metadata applied, as ffmpeg decodes it); the frame rate is a fraction (30000/1001); the frame count is
/// counted by demuxing the stream.
/// </summary>
internal sealed record VideoInfo(
    string Path,
    int Width,
    int Height,
    (int Num, int Den) FrameRate,
    long FrameCount,
    double Duration,
    bool HasAudio,
    string Codec
)
{
    public double FramesPerSecond => (double)FrameRate.Num / FrameRate.Den;

    public string FrameRateText => $"{FrameRate.Num}/{FrameRate.Den}";
}

/// <summary>
/// FFmpeg as a separate process: ffprobe for what a file holds, ffmpeg decoding to raw RGB frames on a pipe and
/// encoding raw frames from a pipe. Raw pipes keep every frame in our hands with no codec library linked in.
/// </summary>
internal static class Ffmpeg
{
    public const string DirectoryVariable = "IDDIS_FFMPEG_DIR";

    /// <summary>The full path of <paramref name="tool"/> (ffmpeg or ffprobe), or null when it is not installed.</summary>
    public static string? Find(string tool)
    {
        var dirs = new List<string>();
        if (Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } own)
            dirs.Add(own);
        dirs.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator));
        string name = OperatingSystem.IsWindows() ? tool + ".exe" : tool;
        return dirs.Where(d => d.Length > 0).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
    }

    public static bool IsAvailable => Find("ffmpeg") is not null && Find("ffprobe") is not null;

    internal static string Require(string tool) => Find(tool) ?? throw new FfmpegMissingException(tool);

    /// <summary>The first video stream of <paramref name="path"/>: size, rate, frame count, and whether audio
    /// follows.</summary>
    public static VideoInfo Probe(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such video file", path);
        var (code, stdout, stderr) = RunToEnd(
            Require("ffprobe"),
            ["-v", "error", "-count_packets", "-print_format", "json", "-show_streams", "-show_format", path]
        );
        if (code != 0)
            throw new VideoFileException(path, $"not a readable video ({LastLine(stderr)})");
        try
        {
            using var json = JsonDocument.Parse(stdout);
            var streams = json.RootElement.TryGetProperty("streams", out var s) ? s.EnumerateArray().ToList() : [];
            var video = streams.FirstOrDefault(x =>
                Str(x, "codec_type") == "video"
                && !(
                    x.TryGetProperty("disposition", out var d)
                    && d.TryGetProperty("attached_pic", out var pic)
                    && pic.GetInt32() == 1
                )
            );
            if (video.ValueKind != JsonValueKind.Object)
                throw new VideoFileException(path, "holds no video stream");
            int width = Int(video, "width"),
                height = Int(video, "height");
            if (width <= 0 || height <= 0)
                throw new VideoFileException(path, "its video stream has no frame size");
            if (Math.Abs(Rotation(video)) % 180 == 90)
                (width, height) = (height, width);
            var rate = Rate(Str(video, "avg_frame_rate"));
            if (rate.Num <= 0)
                rate = Rate(Str(video, "r_frame_rate"));
            if (rate.Num <= 0)
                throw new VideoFileException(path, "its video stream has no frame rate");
            long frames = long.TryParse(Str(video, "nb_read_packets"), out var n) ? n : 0;
            double duration = double.TryParse(
                json.RootElement.TryGetProperty("format", out var f) ? Str(f, "duration") : null,
                NumberStyles.Float,
                CultureInfo.InvariantCulture,
                out var dur
            )
                ? dur
                : frames / ((double)rate.Num / rate.Den);
            bool audio = streams.Any(x => Str(x, "codec_type") == "audio");
            return new VideoInfo(path, width, height, rate, frames, duration, audio, Str(video, "codec_name") ?? "");
        }
        catch (JsonException e)
        {
            throw new VideoFileException(path, $"ffprobe's description could not be read ({e.Message})");
        }
    }

    static int Rotation(JsonElement stream)
    {
        if (
            stream.TryGetProperty("tags", out var tags)
            && int.TryParse(Str(tags, "rotate"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int r)
        )
            return r;
        if (stream.TryGetProperty("side_data_list", out var side))
            foreach (var d in side.EnumerateArray())
                if (d.TryGetProperty("rotation", out var rot) && rot.TryGetInt32(out int deg))
                    return deg;
        return 0;
    }

    static (int Num, int Den) Rate(string? text)
    {
        var parts = (text ?? "").Split('/');
        return
            parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int num)
            && int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int den)
            && num > 0
            && den > 0
            ? (num, den)
            : (0, 1);
    }

    static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v)
            ? v.ValueKind == JsonValueKind.String
                ? v.GetString()
                : v.GetRawText()
            : null;

    static int Int(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.TryGetInt32(out int i) ? i : 0;

    /// <summary>Seconds as ffmpeg reads them, independent of the culture.</summary>
    internal static string Seconds(double s) => s.ToString("0.######", CultureInfo.InvariantCulture);

    /// <summary>The input options selecting [start, start + duration) of a file.</summary>
    internal static List<string> Window(double? start, double? duration)
    {
        var args = new List<string>();
        if (start is > 0)
            args.AddRange(["-ss", Seconds(start.Value)]);
        if (duration is { } d)
            args.AddRange(["-t", Seconds(d)]);
        return args;
    }

    /// <summary>
    /// Puts the frames of <paramref name="videoOnly"/> together with the audio of <paramref name="source"/> (the
    /// same window of it) into <paramref name="output"/>, copying the streams; audio the output's container cannot
    /// hold as it is gets re-encoded to AAC. <paramref name="shortest"/> cuts the audio at the last frame.
    /// </summary>
    public static void Mux(
        string videoOnly,
        string source,
        double? start,
        double? duration,
        string output,
        bool shortest
    )
    {
        List<string> Args(bool reencodeAudio)
        {
            var a = new List<string> { "-v", "error", "-nostdin", "-y", "-i", videoOnly };
            a.AddRange(Window(start, duration));
            a.AddRange(["-i", source, "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy"]);
            a.AddRange(reencodeAudio ? ["-c:a", "aac", "-b:a", "192k"] : ["-c:a", "copy"]);
            if (shortest)
                a.Add("-shortest");
            if (Path.GetExtension(output).ToLowerInvariant() is ".mp4" or ".mov" or ".m4v")
                a.AddRange(["-movflags", "+faststart"]);
            a.Add(output);
            return a;
        }
        string ffmpeg = Require("ffmpeg");
        var (code, _, stderr) = RunToEnd(ffmpeg, Args(false));
        if (code != 0)
            (code, _, stderr) = RunToEnd(ffmpeg, Args(true));
        if (code != 0)
            throw new VideoFileException(output, $"could not be written ({LastLine(stderr)})");
    }

    internal static (int Code, string Stdout, string Stderr) RunToEnd(string exe, IEnumerable<string> args)
    {
        using var p = Start(exe, args, redirectInput: false, redirectOutput: true);
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.Result);
    }

    internal static Process Start(string exe, IEnumerable<string> args, bool redirectInput, bool redirectOutput)
    {
        var info = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = redirectInput,
            RedirectStandardOutput = redirectOutput,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args)
            info.ArgumentList.Add(a);
        Runtime.HugePages.RestoreStartedTunables(info);
        return Process.Start(info) ?? throw new FfmpegMissingException(Path.GetFileName(exe));
    }

    internal static string LastLine(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "no message" : lines[^1];
    }
}

/// <summary>The error text of a child process, the last few kilobytes of it, collected as it comes.</summary>
internal sealed class StderrTail
{
    readonly StringBuilder _text = new();

    public StderrTail(Process process)
    {
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            lock (_text)
            {
                _text.AppendLine(e.Data);
                if (_text.Length > 8192)
                    _text.Remove(0, _text.Length - 4096);
            }
        };
        process.BeginErrorReadLine();
    }

    public override string ToString()
    {
        lock (_text)
            return _text.ToString();
    }
}

/// <summary>
/// The frames of a video, decoded by ffmpeg into 8-bit RGB (height x width x 3 bytes each), in order, every frame
/// once: no frame is dropped or repeated to fit a rate.
/// </summary>
internal sealed class VideoFrameReader : IDisposable
{
    readonly Process _process;
    readonly StderrTail _stderr;
    readonly Stream _stdout;
    readonly string _path;

    public VideoInfo Info { get; }
    public int FrameBytes => Info.Width * Info.Height * 3;

    public VideoFrameReader(VideoInfo info, double? start = null, double? duration = null)
    {
        Info = info;
        _path = info.Path;
        var args = new List<string> { "-v", "error", "-nostdin" };
        args.AddRange(Ffmpeg.Window(start, duration));
        args.AddRange(["-i", info.Path, "-map", "0:v:0", "-fps_mode", "passthrough"]);
        args.AddRange(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]);
        _process = Ffmpeg.Start(Ffmpeg.Require("ffmpeg"), args, redirectInput: false, redirectOutput: true);
        _stderr = new StderrTail(_process);
        _stdout = _process.StandardOutput.BaseStream;
    }

    /// <summary>Fills <paramref name="frame"/> with the next frame; false at the end of the video.</summary>
    public bool Read(byte[] frame)
    {
        int got = 0;
        while (got < frame.Length)
        {
            int n = _stdout.Read(frame, got, frame.Length - got);
            if (n == 0)
                break;
            got += n;
        }
        if (got == frame.Length)
            return true;
        _process.WaitForExit();
        if (_process.ExitCode != 0)
            throw new VideoFileException(_path, $"could not be decoded ({Ffmpeg.LastLine(_stderr.ToString())})");
        if (got != 0)
            throw new VideoFileException(_path, $"ended inside a frame ({got} of {frame.Length} bytes)");
        return false;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill();
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

/// <summary>
/// Encodes 8-bit RGB frames into a video-only file at a fixed frame rate: H.264 (x264, visually near-lossless at
/// CRF 17), or VP9 for WebM. Closing it finishes the file; a file it leaves after a kill plays up to its last
/// fragment.
/// </summary>
internal sealed class VideoFrameWriter : IDisposable
{
    readonly Process _process;
    readonly StderrTail _stderr;
    readonly Stream _stdin;
    readonly string _path;
    bool _closed;

    public long FramesWritten { get; private set; }

    public VideoFrameWriter(string path, int width, int height, (int Num, int Den) rate, bool webm = false)
    {
        _path = path;
        // 4:2:0 chroma needs even sizes; an odd-sized video keeps full chroma instead of a changed size.
        string pix = width % 2 == 0 && height % 2 == 0 ? "yuv420p" : "yuv444p";
        var args = new List<string> { "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24" };
        args.AddRange(["-s", $"{width}x{height}", "-framerate", $"{rate.Num}/{rate.Den}", "-i", "pipe:0"]);
        args.AddRange(
            webm
                ? ["-c:v", "libvpx-vp9", "-crf", "24", "-b:v", "0", "-row-mt", "1"]
                : ["-c:v", "libx264", "-preset", "medium", "-crf", "17"]
        );
        // Fragmented MP4 keeps the rate's exact time base (Matroska rounds to milliseconds, which the final file
        // would inherit as uneven frame times) and still plays up to the last fragment after a kill.
        args.AddRange(["-pix_fmt", pix, "-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", path]);
        _process = Ffmpeg.Start(Ffmpeg.Require("ffmpeg"), args, redirectInput: true, redirectOutput: false);
        _stderr = new StderrTail(_process);
        _stdin = _process.StandardInput.BaseStream;
    }

    public void Write(ReadOnlySpan<byte> frame)
    {
        try
        {
            _stdin.Write(frame);
            FramesWritten++;
        }
        catch (IOException)
        {
            _process.WaitForExit();
            throw new VideoFileException(_path, $"the encoder stopped ({Ffmpeg.LastLine(_stderr.ToString())})");
        }
    }

    /// <summary>Finishes the file: every frame written is in it.</summary>
    public void Close()
    {
        if (_closed)
            return;
        _closed = true;
        try
        {
            _stdin.Close();
        }
        catch (IOException) { }
        _process.WaitForExit();
        if (_process.ExitCode != 0)
            throw new VideoFileException(_path, $"could not be encoded ({Ffmpeg.LastLine(_stderr.ToString())})");
    }

    public void Dispose()
    {
        try
        {
            if (!_closed)
                _stdin.Close();
            if (!_process.WaitForExit(30_000))
                _process.Kill();
        }
        catch (IOException) { }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

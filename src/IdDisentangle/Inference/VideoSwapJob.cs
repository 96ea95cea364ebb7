using System.Diagnostics;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Runtime;
using IdDisentangle.Video;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Inference;

/// <summary>What <see cref="VideoSwapJob"/> does to a clip.</summary>
internal sealed record VideoSwapOptions
{
    public required string Input { get; init; }
    public required string Output { get; init; }

    /// <summary>Seconds into the clip where processing starts.</summary>
    public double? Start { get; init; }

    /// <summary>Seconds of the clip to process (to its end when null).</summary>
    public double? Duration { get; init; }

    /// <summary>Faces are followed, and their landmarks smoothed, as these say.</summary>
    public TrackingOptions Tracking { get; init; } = new();

    /// <summary>
    /// Weight of the previous frame's w in each face's w (an exponential moving average in W, which the paper's
    /// mapper keeps smooth): 0 uses each frame's own w.
    /// </summary>
    public double WSmoothing { get; init; } = 0.5;

    /// <summary>Move each generated face's mean colour under the mask to the frame face's before pasting.</summary>
    public bool ColourMatch { get; init; }
}

/// <summary>How a video job ended: when it was cancelled (not <c>Completed</c>), <c>Output</c> holds the frames
/// done.</summary>
internal sealed record VideoSwapResult(
    string Output,
    bool Completed,
    int Frames,
    int FramesWithFaces,
    double Seconds,
    VideoInfo Input,
    IReadOnlyList<FacePlacement> Faces
);

/// <summary>
/// One face of one frame: its track, the square it was aligned by (and pasted back through), and how far its w
/// moved since the track's previous frame (Euclidean, 0 on a track's first frame).
/// </summary>
internal sealed record FacePlacement(int Frame, int Track, AlignmentQuad Quad, double WStep);

/// <summary>
/// Swaps the identity of every frame's face in a video: each frame is decoded by ffmpeg, its faces are detected and
/// followed (<see cref="FaceTracker"/>), FFHQ-aligned at their smoothed landmarks, given the identity through E_attr,
/// M (w smoothed over time) and G, and pasted back; frames without a face pass through. The result has the
/// input's size, frame rate and frame count, with the input's audio copied. Written beside the output and moved
/// into place at the end; a cancelled job leaves the frames done as a playable STEM.partial.EXT.
/// </summary>
internal static class VideoSwapJob
{
    /// <summary>The frames the job will read from <paramref name="info"/> for this window (an estimate for
    /// progress).</summary>
    public static long ExpectedFrames(VideoInfo info, double? start, double? duration)
    {
        double fps = info.FramesPerSecond;
        double from = Math.Clamp(start ?? 0, 0, info.Duration);
        double length = Math.Min(duration ?? double.MaxValue, info.Duration - from);
        long byTime = (long)Math.Round(length * fps);
        return Math.Max(0, Math.Min(info.FrameCount > 0 ? info.FrameCount : long.MaxValue, byTime));
    }

    public static VideoInfo Check(VideoSwapOptions o)
    {
        if (o.Start is < 0)
            throw new SettingException(Setting.VideoWindow, $"{o.Start}", "the start must not be negative");
        if (o.Duration is <= 0)
            throw new SettingException(Setting.VideoWindow, $"{o.Duration}", "the duration must be positive");
        if (o.WSmoothing is < 0 or >= 1)
            throw new SettingException(Setting.WSmoothing, $"{o.WSmoothing}", "a weight in [0, 1)");
        if (Path.GetFullPath(o.Input) == Path.GetFullPath(o.Output))
            throw new IOException($"{o.Output}: refusing to overwrite the input video");
        var info = Ffmpeg.Probe(o.Input);
        if (o.Start is { } s && info.Duration > 0 && s >= info.Duration)
            throw new SettingException(Setting.VideoWindow, $"{s}", $"the video is only {info.Duration:F2} s long");
        return info;
    }

    /// <summary>
    /// Runs the job with the identity of the aligned face <paramref name="identity"/>; <paramref name="progress"/>
    /// is told each frame done. Cancelling stops after the current frame and keeps what is done. <paramref name="checked"/>
    /// is what <see cref="Check"/> returned for these options, when the caller already ran it (ffprobe reads the
    /// whole file to count frames: once is enough).
    /// </summary>
    public static VideoSwapResult Run(
        DisentanglementModel model,
        FaceAligner aligner,
        InputImage identity,
        VideoSwapOptions o,
        Action<int>? progress = null,
        CancellationToken cancellation = default,
        VideoInfo? @checked = null
    )
    {
        var info = @checked ?? Check(o);
        string output = Path.GetFullPath(o.Output);
        string dir = Path.GetDirectoryName(output)!;
        Directory.CreateDirectory(dir);
        string ext = Path.GetExtension(output);
        string tag = $"{Environment.ProcessId}.{Guid.NewGuid():N}";
        string videoOnly = Path.Combine(dir, $".{Path.GetFileName(output)}.{tag}.video.mp4");
        string muxed = Path.Combine(dir, $".{Path.GetFileNameWithoutExtension(output)}.{tag}.tmp{ext}");
        var clock = Stopwatch.StartNew();
        int frames = 0,
            withFaces = 0;
        bool completed = false;
        var placements = new List<FacePlacement>();
        try
        {
            using (var reader = new VideoFrameReader(info, o.Start, o.Duration))
            using (var writer = new VideoFrameWriter(videoOnly, info.Width, info.Height, info.FrameRate, IsWebm(ext)))
            {
                var swapper = new FrameSwapper(model, aligner, identity, o, 1 / info.FramesPerSecond, placements);
                try
                {
                    var frame = new byte[reader.FrameBytes];
                    while (!cancellation.IsCancellationRequested && reader.Read(frame))
                    {
                        var swapped = swapper.Swap(frame, info.Width, info.Height, frames);
                        writer.Write(swapped ?? frame);
                        frames++;
                        if (swapped is not null)
                            withFaces++;
                        progress?.Invoke(1);
                    }
                    completed = !cancellation.IsCancellationRequested;
                }
                catch (VideoFileException) when (cancellation.IsCancellationRequested)
                {
                    // Ctrl-C in a terminal reaches ffmpeg too: its pipes close under us. What was written stands.
                }
                finally
                {
                    swapper.Dispose();
                }
                writer.Close();
            }
            if (frames == 0)
                throw new VideoFileException(
                    o.Input,
                    cancellation.IsCancellationRequested ? "cancelled before the first frame" : "no frame in the window"
                );
            string target = completed
                ? output
                : Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(output)}.partial{ext}");
            Ffmpeg.Mux(videoOnly, o.Input, o.Start, o.Duration, muxed, shortest: !completed);
            File.Move(muxed, target, overwrite: true);
            return new VideoSwapResult(
                target,
                completed,
                frames,
                withFaces,
                clock.Elapsed.TotalSeconds,
                info,
                placements
            );
        }
        finally
        {
            foreach (var tmp in new[] { videoOnly, muxed })
                try
                {
                    File.Delete(tmp);
                }
                catch (IOException) { }
        }
    }

    static bool IsWebm(string ext) => ext.Equals(".webm", StringComparison.OrdinalIgnoreCase);

    /// <summary>The per-frame work, with what carries over between frames: the tracks and each face's w.</summary>
    sealed class FrameSwapper : IDisposable
    {
        readonly DisentanglementModel _model;
        readonly FaceAligner _aligner;
        readonly VideoSwapOptions _options;
        readonly double _dt;
        readonly FaceTracker _tracker;
        readonly Tensor _identityCode;
        readonly Dictionary<int, Tensor> _w = [];
        readonly List<FacePlacement> _placements;

        public FrameSwapper(
            DisentanglementModel model,
            FaceAligner aligner,
            InputImage identity,
            VideoSwapOptions options,
            double dt,
            List<FacePlacement> placements
        )
        {
            _placements = placements;
            _model = model;
            _aligner = aligner;
            _options = options;
            _dt = dt;
            _tracker = new FaceTracker(options.Tracking);
            int r = model.Generator.Resolution;
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.inference_mode();
            var face = ImageOps.Resize(identity.Image, r, r, ResizeFilter.Area).unsqueeze(0);
            _identityCode = model.IdentityCodes(face.to(model.Device)).MoveToOuterDisposeScope();
        }

        /// <summary>The frame with its faces swapped (RGB bytes), or null when it has no face.</summary>
        public byte[]? Swap(byte[] rgb, int width, int height, int frame)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.inference_mode();
            var photo = FromRgb(rgb, height, width);
            var faces = _tracker.Update(_aligner.Detect(photo), _dt);
            foreach (var id in _w.Keys.Except(_tracker.TrackIds).ToList())
            {
                _w[id].Dispose();
                _w.Remove(id);
            }
            if (faces.Count == 0)
                return null;
            var input = new InputImage(_options.Input, "frame", photo);
            var result = photo;
            foreach (var face in faces)
            {
                var aligned = _aligner.AlignAt(input, face.Detection, face.Landmarks);
                var attrCode = _model.AttributeCodes(aligned.Face.Image.unsqueeze(0).to(_model.Device));
                var (w, step) = Smooth(face.TrackId, _model.WFromCodes(_identityCode, attrCode));
                _placements.Add(new FacePlacement(frame, face.TrackId, aligned.Quad, step));
                var rendered = _model.Render(w)[0].cpu();
                int r = (int)rendered.shape[^1];
                var mask = PasteBack.FaceMask(face.Landmarks, aligned.Quad, r);
                if (_options.ColourMatch)
                    rendered = PasteBack.MatchColours(
                        rendered,
                        ImageOps.Resize(aligned.Face.Image, r, r, ResizeFilter.Area),
                        mask,
                        matchSpread: false
                    );
                result = PasteBack.Paste(result, rendered, aligned.Quad, mask);
            }
            return ToRgb(result);
        }

        (Tensor W, double Step) Smooth(int track, Tensor w)
        {
            double keep = _options.WSmoothing;
            double step = 0;
            if (_w.TryGetValue(track, out var previous))
            {
                if (keep > 0)
                    w = previous.Times(keep).Plus(w.Times(1 - keep));
                step = (w - previous).norm().ToDouble();
            }
            var kept = w.detach().clone().DetachFromDisposeScope();
            if (_w.Remove(track, out var old))
                old.Dispose();
            _w[track] = kept;
            return (w, step);
        }

        public void Dispose()
        {
            foreach (var w in _w.Values)
                w.Dispose();
            _w.Clear();
            _identityCode.Dispose();
        }
    }

    /// <summary>Height x width x 3 bytes as an image [3,H,W] in [0,1].</summary>
    internal static Tensor FromRgb(byte[] rgb, int height, int width) =>
        torch.tensor(rgb, [height, width, 3]).permute(2, 0, 1).to(ScalarType.Float32).DividedByInPlace(255);

    /// <summary>An image [3,H,W] in [0,1] as height x width x 3 bytes, each value rounded to the nearest
    /// byte.</summary>
    internal static byte[] ToRgb(Tensor image) =>
        image
            .Times(255)
            .round_()
            .ClampInPlace(0, 255)
            .to(ScalarType.Byte)
            .permute(1, 2, 0)
            .contiguous()
            .data<byte>()
            .ToArray();
}

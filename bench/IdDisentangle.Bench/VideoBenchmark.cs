using System.Diagnostics;
using System.Globalization;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Models;
using IdDisentangle.Runtime;
using IdDisentangle.Video;
using IdDisentangle.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace IdDisentangle.Bench;

/// <summary>
/// <c>iddis video</c>'s work at 256 px (standard StyleGAN2 with random weights, InceptionV3, face-api.js nets, dlib's
/// landmarks) on a clip of a still face with sensor-like noise, smoothing on and off: frames per second, and jitter.
/// A random generator draws no eyes to detect, so jitter is measured where the swapped face is put: FFHQ's mean eye
/// centres in the aligned square, mapped into the frame through each frame's alignment square (the quad the result
/// is pasted back through), and how far w moves per frame.
/// </summary>
internal static class VideoBenchmark
{
    /// <summary>Mean eye centres of FFHQ's aligned faces, as fractions of the square's side.</summary>
    static readonly (double U, double V)[] Eyes = [(0.385, 0.47), (0.615, 0.47)];

    public static Dictionary<string, object> Run(Options o)
    {
        torch.set_num_threads(o.Threads);
        if (!Ffmpeg.IsAvailable)
            throw new InvalidOperationException("the video benchmark needs ffmpeg (apt-get install ffmpeg)");
        string repo = Suite.FindRepo();
        string photo = Path.Combine(
            o.Images ?? Path.Combine(repo, "tests", "fixtures", "data", "photos-unaligned"),
            "DST_02.jpg"
        );
        string dir = Path.Combine(Path.GetTempPath(), $"iddis-bench-video-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            int frames = o.Iters > 0 ? o.Iters : 40;
            string clip = Path.Combine(dir, "still.mp4");
            // A still photo at 640x480, 25 fps, with temporal noise (what makes a detector's landmarks wander on a
            // real still shot), and a tone.
            RunFfmpeg(
                "-loop",
                "1",
                "-i",
                photo,
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440",
                "-filter_complex",
                "[0:v]scale=640:480:force_original_aspect_ratio=increase,crop=640:480,fps=25,"
                    + "noise=alls=12:allf=t,format=yuv420p[v]",
                "-map",
                "[v]",
                "-map",
                "1:a",
                "-frames:v",
                frames.ToString(CultureInfo.InvariantCulture),
                "-c:v",
                "libx264",
                "-crf",
                "18",
                "-c:a",
                "aac",
                "-shortest",
                clip
            );
            // The pipes alone: decode every frame to raw RGB and encode it again, no network.
            var info = Ffmpeg.Probe(clip);
            var pipes = Stopwatch.StartNew();
            using (var reader = new VideoFrameReader(info))
            using (
                var writer = new VideoFrameWriter(
                    Path.Combine(dir, "copy.mp4"),
                    info.Width,
                    info.Height,
                    info.FrameRate
                )
            )
            {
                var buffer = new byte[reader.FrameBytes];
                while (reader.Read(buffer))
                    writer.Write(buffer);
                writer.Close();
            }
            double pipeFps = frames / pipes.Elapsed.TotalSeconds;
            var store = new ModelStore();
            torch.manual_seed(0);
            var g = new StyleGan2Generator(StyleGan2Config.Standard(o.Size));
            var eId = new IdentityEncoder(PretrainedNetworks.FaceRecognition(store), FaceCrop.FfhqFaceApi);
            var eAttr = new AttributeEncoder(PretrainedNetworks.InceptionV3(store));
            var m = new LatentMapper(eId.EmbeddingDim, eAttr.FeatureDim, g.StyleDim);
            foreach (var mod in new nn.Module[] { g, eId, eAttr, m })
            {
                mod.eval();
                foreach (var p in mod.parameters())
                    p.requires_grad = false;
            }
            using var model = new DisentanglementModel(g, eId, eAttr, m, CPU);
            using var aligner = FaceAligner.Load(store, CPU, o.Size);
            var identity = aligner.Align(new InputImage(photo, "id", ImageIO.Read(photo)), _ => { })[0];
            var result = new Dictionary<string, object>
            {
                ["frames"] = frames,
                ["size"] = o.Size,
                ["pipes_only_fps"] = pipeFps,
            };
            foreach (bool smooth in new[] { false, true })
            {
                var options = new VideoSwapOptions
                {
                    Input = clip,
                    Output = Path.Combine(dir, smooth ? "smooth.mp4" : "raw.mp4"),
                    WSmoothing = smooth ? 0.5 : 0,
                    Tracking = new TrackingOptions { SmoothLandmarks = smooth },
                };
                var run = VideoSwapJob.Run(model, aligner, identity, options);
                string key = smooth ? "smoothed" : "unsmoothed";
                result[$"{key}_fps"] = run.Frames / run.Seconds;
                result[$"{key}_eye_jitter_px"] = EyeJitter(run.Faces);
                result[$"{key}_w_step"] = run.Faces.Skip(1).Average(f => f.WStep);
                result[$"{key}_frames_with_face"] = run.FramesWithFaces;
            }
            result["peak_rss_mib"] = Measure.PeakRssMiB();
            return result;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Mean frame-to-frame motion (pixels) of the two eye centres where the result is pasted.</summary>
    static double EyeJitter(IReadOnlyList<FacePlacement> faces)
    {
        static PixelPoint At(AlignmentQuad q, double u, double v) =>
            new(
                q.UpperLeft.X + u * (q.UpperRight.X - q.UpperLeft.X) + v * (q.LowerLeft.X - q.UpperLeft.X),
                q.UpperLeft.Y + u * (q.UpperRight.Y - q.UpperLeft.Y) + v * (q.LowerLeft.Y - q.UpperLeft.Y)
            );
        var motion = new List<double>();
        for (int i = 1; i < faces.Count; i++)
            if (faces[i].Frame == faces[i - 1].Frame + 1 && faces[i].Track == faces[i - 1].Track)
                foreach (var (u, v) in Eyes)
                {
                    var a = At(faces[i - 1].Quad, u, v);
                    var b = At(faces[i].Quad, u, v);
                    motion.Add(Math.Sqrt((a.X - b.X) * (a.X - b.X) + (a.Y - b.Y) * (a.Y - b.Y)));
                }
        return motion.Count == 0 ? double.NaN : motion.Average();
    }

    static void RunFfmpeg(params string[] args)
    {
        var psi = new ProcessStartInfo(Ffmpeg.Find("ffmpeg")!) { RedirectStandardError = true };
        foreach (var a in new[] { "-v", "error", "-nostdin", "-y" }.Concat(args))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"ffmpeg failed: {err}");
    }
}

using System.Diagnostics;
using IdDisentangle.Faces;
using IdDisentangle.Imaging;
using IdDisentangle.Inference;
using IdDisentangle.Video;

namespace IdDisentangle.Tests;

/// <summary>
/// <c>iddis video</c> on clips that ffmpeg makes from a photo: the output keeps the input's size, rate, frame count
/// and sound; frames without a face pass through; damaged files are one clear error; a cancelled job leaves a
/// playable partial clip and no temporary file.
/// </summary>
[Collection("console")]
public class VideoTests
{
    static string Photos => TestPaths.Data("photos-unaligned");

    static void Require()
    {
        ExternalTools.RequireFfmpeg();
        TestModels.RequireFaceApi();
    }

    /// <summary>Runs ffmpeg with <paramref name="args"/>; fails the test on an error.</summary>
    static void Ffmpeg(params string[] args)
    {
        var psi = new ProcessStartInfo(IdDisentangle.Video.Ffmpeg.Find("ffmpeg")!) { RedirectStandardError = true };
        foreach (var a in new[] { "-v", "error", "-nostdin", "-y" }.Concat(args))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
    }

    /// <summary>A 480x360 clip at 24 fps of a photo slowly panned and zoomed, with a 440 Hz tone.</summary>
    static string PanAndZoomClip(string dir, string photo = "DST_02.jpg", double seconds = 1.5)
    {
        string clip = Path.Combine(dir, "clip.mp4");
        Ffmpeg(
            "-loop",
            "1",
            "-i",
            Path.Combine(Photos, photo),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-filter_complex",
            "[0:v]scale=480:-2,zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)+on':y='ih/2-(ih/zoom/2)':d=1:s=480x360:fps=24,"
                + "format=yuv420p[v]",
            "-map",
            "[v]",
            "-map",
            "1:a",
            "-t",
            seconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            clip
        );
        return clip;
    }

    /// <summary>The tiny trained run, face inputs aligning with face-api's landmarks, and DST_01's face.</summary>
    static (DisentanglementModel Model, FaceInputs Faces, InputImage Id) ModelAndIdentity()
    {
        var model = DisentanglementModel.FromRun(InferenceTests.Trained.Value.Run, "last", device: "cpu");
        var faces = new FaceInputs(
            model.Generator.Resolution,
            CPU,
            InputAlignment.Align,
            landmarks: AlignmentLandmarks.FaceApi
        );
        var id = faces.Align([InferenceJobs.ReadImage(Path.Combine(Photos, "DST_01.jpg"))], _ => { })[0];
        return (model, faces, id);
    }

    static string[] Common(string clip, string output) =>
        [
            "video",
            "--run",
            InferenceTests.Trained.Value.Run,
            "--checkpoint",
            "last",
            "--id",
            Path.Combine(Photos, "DST_01.jpg"),
            "--video",
            clip,
            "--out",
            output,
            "--landmarks",
            "face-api",
            "--device",
            "cpu",
        ];

    static List<Tensor> Frames(string path)
    {
        var info = IdDisentangle.Video.Ffmpeg.Probe(path);
        using var reader = new VideoFrameReader(info);
        var frames = new List<Tensor>();
        var buffer = new byte[reader.FrameBytes];
        while (reader.Read(buffer))
            frames.Add(VideoSwapJob.FromRgb(buffer, info.Height, info.Width).DetachFromDisposeScope());
        return frames;
    }

    static double Psnr(Tensor a, Tensor b) => 10 * Math.Log10(1 / Math.Max(1e-12, (a - b).square().mean().ToDouble()));

    static void NoTemporaryFiles(string dir) => Assert.Empty(Directory.GetFiles(dir, ".*"));

    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    [Trait("Category", TestCategories.External)]
    public async Task AClipComesOutWithItsSizeRateFrameCountAndSound()
    {
        Require();
        string dir = TestPaths.NewTempDir();
        string clip = PanAndZoomClip(dir);
        string output = Path.Combine(dir, "swapped.mp4");
        var (code, text) = await CliCapture.RunAsync(Common(clip, output));
        Assert.True(code == 0, text);
        var input = IdDisentangle.Video.Ffmpeg.Probe(clip);
        var result = IdDisentangle.Video.Ffmpeg.Probe(output);
        Assert.Equal((480, 360), (result.Width, result.Height));
        Assert.Equal(input.FrameRate, result.FrameRate);
        Assert.Equal(36, input.FrameCount);
        Assert.Equal(input.FrameCount, result.FrameCount);
        Assert.True(result.HasAudio, "the audio stream is copied");
        Assert.Contains("36 frames (36 with a face)", text);
        NoTemporaryFiles(dir);

        // The face changed, the rest of the frame did not (beyond the encoder's loss).
        using var scope = NewDisposeScope();
        var before = Frames(clip);
        var after = Frames(output);
        var face = before[18][.., 40..140, 180..300];
        var corner = before[18][.., 0..60, 0..60];
        Assert.True((after[18][.., 40..140, 180..300] - face).abs().mean().ToDouble() > 0.05, "the face is replaced");
        Assert.True(Psnr(after[18][.., 0..60, 0..60], corner) > 38, "the background is kept");

        // A window of the clip: 0.5 s from 0.5 s is 12 frames at 24 fps, with its sound.
        string part = Path.Combine(dir, "part.mp4");
        (code, text) = await CliCapture.RunAsync([.. Common(clip, part), "--start", "0.5", "--duration", "0.5"]);
        Assert.True(code == 0, text);
        var window = IdDisentangle.Video.Ffmpeg.Probe(part);
        Assert.Equal(12, window.FrameCount);
        Assert.True(window.HasAudio);
        Assert.InRange(window.Duration, 0.45, 0.65);
    }

    /// <summary>Frames without a face are the input's frames; only frames with one are swapped.</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    [Trait("Category", TestCategories.External)]
    public void FramesWithoutAFacePassThrough()
    {
        Require();
        string dir = TestPaths.NewTempDir();
        string clip = Path.Combine(dir, "gap.mp4");
        // Half a second of an empty grey wall, then half a second of the photo (24 fps, 12 + 12 frames).
        Ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "color=c=0x808890:s=480x360:r=24:d=0.5",
            "-loop",
            "1",
            "-framerate",
            "24",
            "-t",
            "0.5",
            "-i",
            Path.Combine(Photos, "DST_02.jpg"),
            "-filter_complex",
            "[1:v]scale=480:360,setsar=1[p];[0:v][p]concat=n=2:v=1:a=0,format=yuv420p[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            clip
        );
        string output = Path.Combine(dir, "out.mp4");
        var (model, faces, id) = ModelAndIdentity();
        using var _model = model;
        using var _faces = faces;
        var result = VideoSwapJob.Run(
            model,
            faces.Aligner(),
            id,
            new VideoSwapOptions { Input = clip, Output = output }
        );
        Assert.True(result.Completed);
        Assert.Equal(24, result.Frames);
        Assert.Equal(12, result.FramesWithFaces);
        Assert.False(result.Input.HasAudio);
        Assert.False(IdDisentangle.Video.Ffmpeg.Probe(output).HasAudio);
        using var scope = NewDisposeScope();
        var before = Frames(clip);
        var after = Frames(output);
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < 12; i++)
            Assert.True(Psnr(after[i], before[i]) > 40, $"frame {i} without a face changed");
        Assert.True((after[18] - before[18]).abs().max().ToDouble() > 0.2, "a frame with a face is swapped");
        NoTemporaryFiles(dir);
    }

    /// <summary>Random bytes and a clip cut in half are each one line naming the file; nothing is written.</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.External)]
    public async Task ADamagedVideoIsOneClearError()
    {
        ExternalTools.RequireFfmpeg();
        string dir = TestPaths.NewTempDir();
        string noise = Path.Combine(dir, "noise.mp4");
        File.WriteAllBytes(noise, Enumerable.Range(0, 40_000).Select(i => (byte)(i * 7919 % 251)).ToArray());
        string clip = PanAndZoomClip(dir, seconds: 0.5);
        string cut = Path.Combine(dir, "cut.mp4");
        var bytes = File.ReadAllBytes(clip);
        File.WriteAllBytes(cut, bytes[..(bytes.Length / 2)]);
        foreach (var bad in new[] { noise, cut, Path.Combine(dir, "missing.mp4") })
        {
            string output = Path.Combine(dir, "out.mp4");
            var (code, text) = await CliCapture.RunAsync(
                "video",
                "--run",
                "no-such-run",
                "--id",
                Path.Combine(Photos, "DST_01.jpg"),
                "--video",
                bad,
                "--out",
                output
            );
            Assert.Equal(1, code);
            Assert.Contains($"error: {bad}", text);
            Assert.DoesNotContain(" at IdDisentangle", text);
            Assert.False(File.Exists(output));
        }
        NoTemporaryFiles(dir);
    }

    /// <summary>Cancelling after a few frames keeps them as a playable STEM.partial.mp4 with sound, and nothing
    /// else.</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    [Trait("Category", TestCategories.External)]
    public void CancellingLeavesAPlayablePartialClip()
    {
        Require();
        string dir = TestPaths.NewTempDir();
        string clip = PanAndZoomClip(dir);
        string output = Path.Combine(dir, "out.mp4");
        var (model, faces, id) = ModelAndIdentity();
        using var _model = model;
        using var _faces = faces;
        using var cts = new CancellationTokenSource();
        int done = 0;
        var result = VideoSwapJob.Run(
            model,
            faces.Aligner(),
            id,
            new VideoSwapOptions { Input = clip, Output = output },
            n =>
            {
                if ((done += n) == 5)
                    cts.Cancel();
            },
            cts.Token
        );
        Assert.False(result.Completed);
        Assert.Equal(5, result.Frames);
        Assert.Equal(Path.Combine(dir, "out.partial.mp4"), result.Output);
        Assert.False(File.Exists(output));
        var partial = IdDisentangle.Video.Ffmpeg.Probe(result.Output);
        Assert.Equal(5, partial.FrameCount);
        Assert.True(partial.HasAudio);
        Assert.True(partial.Duration < 0.5, $"the sound is cut at the last frame ({partial.Duration} s)");
        NoTemporaryFiles(dir);
    }

    /// <summary>Ctrl-C (SIGINT to the process) during `iddis video`: exit 130, the frames done in a playable
    /// STEM.partial.mp4, no temporary file.</summary>
    [SkippableFact]
    [Trait("Category", TestCategories.Slow)]
    [Trait("Category", TestCategories.External)]
    public void CtrlCLeavesAPlayablePartialClip()
    {
        Require();
        string dir = TestPaths.NewTempDir();
        string clip = PanAndZoomClip(dir, seconds: 6);
        string output = Path.Combine(dir, "out.mp4");
        var (p, stdout) = IddisProcess.Start(Common(clip, output));
        using var _ = p;
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (
            Directory.GetFiles(dir, ".out.mp4.*.video.mp4").Length == 0 && !p.HasExited && DateTime.UtcNow < deadline
        )
            Thread.Sleep(50);
        Thread.Sleep(3000); // some frames done
        Assert.False(p.HasExited, "the job ended before it could be interrupted");
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString()]))
            kill.WaitForExit();
        Assert.True(p.WaitForExit(120_000), "the job did not stop after Ctrl-C");
        Assert.Equal(130, p.ExitCode);
        string partial = Path.Combine(dir, "out.partial.mp4");
        Assert.True(File.Exists(partial), stdout.Result);
        Assert.Contains("cancelled", stdout.Result);
        var info = IdDisentangle.Video.Ffmpeg.Probe(partial);
        Assert.InRange(info.FrameCount, 1, 143);
        Assert.True(info.HasAudio);
        Assert.False(File.Exists(output));
        NoTemporaryFiles(dir);
    }
}

/// <summary>Following faces through frames: the One Euro filter and the tracker, on made-up detections.</summary>
public class FaceTrackerTests
{
    static DetectedFace Face(double x, double y, double size, double jitter = 0, Random? random = null)
    {
        var points = Enumerable
            .Range(0, 68)
            .Select(i => new PixelPoint(
                x + size * (i % 9) / 9 + jitter * ((random?.NextDouble() ?? 0.5) - 0.5),
                y + size * (i / 9) / 8 + jitter * ((random?.NextDouble() ?? 0.5) - 0.5)
            ))
            .ToList();
        return new DetectedFace(new FaceBox(x, y, size, size), 0.9, points);
    }

    static double MeanFrameToFrameMotion(IEnumerable<IReadOnlyList<PixelPoint>> frames)
    {
        var list = frames.ToList();
        return Enumerable
            .Range(1, list.Count - 1)
            .Average(t =>
                list[t].Zip(list[t - 1], (a, b) => Math.Sqrt(Math.Pow(a.X - b.X, 2) + Math.Pow(a.Y - b.Y, 2))).Average()
            );
    }

    /// <summary>A still face with 2 px of detection noise moves at least 3 times less after smoothing.</summary>
    [Fact]
    public void SmoothingRemovesTheJitterOfAStillFace()
    {
        var random = new Random(5);
        var detections = Enumerable.Range(0, 60).Select(_ => Face(100, 80, 120, jitter: 2, random)).ToList();
        var raw = new FaceTracker(new TrackingOptions { SmoothLandmarks = false });
        var smooth = new FaceTracker(new TrackingOptions());
        double rawMotion = MeanFrameToFrameMotion(detections.Select(d => raw.Update([d], 1 / 30.0)[0].Landmarks));
        double smoothMotion = MeanFrameToFrameMotion(
            detections.Select(d => smooth.Update([d], 1 / 30.0)[0].Landmarks).Skip(10)
        );
        Assert.True(smoothMotion * 3 < rawMotion, $"{smoothMotion:F3} px vs {rawMotion:F3} px per frame");
    }

    /// <summary>A face moving steadily is followed closely: after it settles, the lag is under 3% of the face's
    /// size.</summary>
    [Fact]
    public void SmoothingFollowsAMovingFace()
    {
        var tracker = new FaceTracker(new TrackingOptions());
        IReadOnlyList<PixelPoint> last = [];
        DetectedFace face = Face(0, 0, 100);
        for (int t = 0; t < 60; t++)
        {
            face = Face(100 + 4 * t, 80, 100); // 1.2 face widths per second at 30 fps
            last = tracker.Update([face], 1 / 30.0)[0].Landmarks;
        }
        double lag = last.Zip(face.Landmarks, (a, b) => Math.Abs(a.X - b.X)).Average();
        Assert.True(lag < 3, $"lag {lag:F2} px");
    }

    /// <summary>With every face followed, each keeps its track when their sizes (and so their order) swap; one
    /// that leaves for longer than allowed ends its track; a face far from the last one starts a new track.</summary>
    [Fact]
    public void FacesKeepTheirTracksByPosition()
    {
        var tracker = new FaceTracker(new TrackingOptions { AllFaces = true, MaxMissedFrames = 2 });
        var first = tracker.Update([Face(0, 0, 100), Face(400, 0, 80)], 0.04);
        int left = first.Single(f => f.Detection.Box.X < 200).TrackId,
            right = first.Single(f => f.Detection.Box.X > 200).TrackId;
        var swapped = tracker.Update([Face(2, 0, 70), Face(402, 0, 110)], 0.04);
        Assert.Equal(left, swapped.Single(f => f.Detection.Box.X < 200).TrackId);
        Assert.Equal(right, swapped.Single(f => f.Detection.Box.X > 200).TrackId);
        for (int i = 0; i < 3; i++)
            tracker.Update([Face(402, 0, 110)], 0.04);
        Assert.Equal([right], tracker.TrackIds);
        var single = new FaceTracker(new TrackingOptions());
        int a = single.Update([Face(0, 0, 100)], 0.04)[0].TrackId;
        Assert.Equal(a, single.Update([Face(10, 0, 100)], 0.04)[0].TrackId);
        Assert.NotEqual(a, single.Update([Face(500, 0, 100)], 0.04)[0].TrackId);
    }
}

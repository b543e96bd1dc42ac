// Pose math of the viewer: a line-by-line port of mobiler2l_ns/geometry.py (asPose, toNormalised,
// rotationAbout, lookAt: look_at), mobiler2l_ns/export/runtime.py (orbitPoses) and
// mobiler2l_ns/web/camera.py (viewerPose).
// Poses: nerfstudio camera-to-world, OpenGL axes (camera looks down -Z, +Y up, +X right), 3x4
// row-major nested arrays [[r00, r01, r02, t0], [r10, ...], [r20, ...]], in the dataparser's
// normalised world. All arithmetic in float64 (JS numbers), as numpy's.

/** [3, 4] pose from a 3x4 / 4x4 nested array or 12 / 16 numbers (geometry.as_pose). */
export function asPose(c2w) {
  const flat = Array.isArray(c2w[0]) ? c2w.flat() : Array.from(c2w);
  if (flat.length !== 12 && flat.length !== 16) {
    throw new Error(`a camera pose must be a 3x4 or 4x4 camera-to-world matrix, got ${flat.length} numbers`);
  }
  if (!flat.every(Number.isFinite)) throw new Error('the camera pose contains NaN or infinite values');
  return [0, 1, 2].map((i) => flat.slice(4 * i, 4 * i + 4).map(Number));
}

/** Pose from a rotation (3x3 nested or 9 numbers, row-major) and a translation (3 numbers). */
export function composePose(rotation, translation) {
  const r = Array.isArray(rotation[0]) ? rotation.flat() : Array.from(rotation);
  if (r.length !== 9 || translation.length !== 3) throw new Error('rotation must be 3x3 and translation 3 numbers');
  return asPose([...r.slice(0, 3), translation[0], ...r.slice(3, 6), translation[1], ...r.slice(6, 9), translation[2]]);
}

function column(pose, j) {
  return [pose[0][j], pose[1][j], pose[2][j]];
}

function matVec(m, v) {
  return [0, 1, 2].map((i) => m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2]);
}

function matMul(a, b) {
  return [0, 1, 2].map((i) => [0, 1, 2].map((j) => a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j]));
}

function withColumns(rotation, translation) {
  return [0, 1, 2].map((i) => [rotation[i][0], rotation[i][1], rotation[i][2], translation[i]]);
}

function rotationOf(pose) {
  return pose.map((row) => row.slice(0, 3));
}

/** Capture coordinates -> normalised world: R' = T[:, :3] R, t' = s (T[:, :3] t + T[:, 3]). */
export function toNormalised(c2w, transform, scale) {
  const pose = asPose(c2w);
  const T = transform.slice(0, 3).map((row) => row.slice(0, 3));
  const rotation = matMul(T, rotationOf(pose));
  const rt = matVec(T, column(pose, 3));
  const translation = [0, 1, 2].map((i) => scale * (rt[i] + transform[i][3]));
  return withColumns(rotation, translation);
}

/** Rodrigues rotation matrix of `angle` radians about `axis` (normalised here). */
export function rotationAbout(axis, angle) {
  const n = Math.sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
  const k = axis.map((x) => x / n);
  const K = [
    [0.0, -k[2], k[1]],
    [k[2], 0.0, -k[0]],
    [-k[1], k[0], 0.0],
  ];
  const KK = matMul(K, K);
  const s = Math.sin(angle);
  const c = 1.0 - Math.cos(angle);
  return [0, 1, 2].map((i) => [0, 1, 2].map((j) => (i === j ? 1.0 : 0.0) + s * K[i][j] + c * KK[i][j]));
}

/** [M R | c + M (t - c)]: the camera rotated rigidly about the point c. */
export function rotateAboutPoint(pose, matrix, centre) {
  const rotation = matMul(matrix, rotationOf(pose));
  const t = column(pose, 3);
  const moved = matVec(matrix, [t[0] - centre[0], t[1] - centre[1], t[2] - centre[2]]);
  return withColumns(rotation, [0, 1, 2].map((i) => centre[i] + moved[i]));
}

/** `frames` poses of the reference runner's --orbit (runtime.orbit_poses). */
export function orbitPoses(base, orbit, frames) {
  const pose = asPose(base);
  const poses = [];
  for (let i = 0; i < frames; i++) {
    const angle = (2.0 * Math.PI * i) / frames;
    if (orbit.kind === 'turntable') {
      poses.push(rotateAboutPoint(pose, rotationAbout(orbit.axis, angle), orbit.center));
    } else {
      const x = column(pose, 0);
      const y = column(pose, 1);
      const offset = [0, 1, 2].map((j) => orbit.radius * (Math.cos(angle) * x[j] + Math.sin(angle) * y[j]));
      poses.push(withColumns(rotationOf(pose), [0, 1, 2].map((j) => pose[j][3] + offset[j])));
    }
  }
  return poses;
}

/** The viewer camera's pose for orbit parameters (a, b, zoom): see mobiler2l_ns/web/camera.py. */
export function viewerPose(base, orbit, a, b, zoom = 1.0) {
  let pose = asPose(base);
  if (orbit.kind === 'turntable') {
    const c = orbit.center;
    pose = withColumns(rotationOf(pose), [0, 1, 2].map((i) => c[i] + zoom * (pose[i][3] - c[i])));
    pose = rotateAboutPoint(pose, rotationAbout(column(pose, 0), b), c);
    return rotateAboutPoint(pose, rotationAbout(orbit.axis, a), c);
  }
  const r = orbit.radius;
  const [x, y, z] = [column(pose, 0), column(pose, 1), column(pose, 2)];
  const t = [0, 1, 2].map((i) => pose[i][3] + r * (a * x[i] + b * y[i] + (zoom - 1.0) * z[i]));
  return withColumns(rotationOf(pose), t);
}

/**
 * Elevation of the camera above the orbit plane (radians, turntable): the angle between the
 * direction centre -> camera and the plane orthogonal to the axis. The viewer keeps it within
 * +-(pi/2 - margin) so that dragging never flips the camera over a pole.
 */
export function elevationOf(pose, orbit) {
  const t = column(pose, 3);
  const d = [0, 1, 2].map((i) => t[i] - orbit.center[i]);
  const n = Math.hypot(d[0], d[1], d[2]);
  const axis = orbit.axis;
  const an = Math.hypot(axis[0], axis[1], axis[2]);
  if (n === 0) return 0;
  return Math.asin(Math.max(-1, Math.min(1, (d[0] * axis[0] + d[1] * axis[1] + d[2] * axis[2]) / (n * an))));
}

function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function normalised(v) {
  const n = Math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  return v.map((x) => x / n);
}

/** [3, 4] OpenGL c2w at `position` looking at `target` with no roll about `up` (geometry.look_at). */
export function lookAt(position, target, up) {
  const forward = normalised([0, 1, 2].map((i) => target[i] - position[i]));
  let right = cross(forward, up);
  if (Math.hypot(right[0], right[1], right[2]) < 1e-6) {
    // looking along up: any right vector will do
    right = cross(forward, Math.abs(forward[0]) < 0.9 ? [1.0, 0.0, 0.0] : [0.0, 1.0, 0.0]);
  }
  right = normalised(right);
  const camUp = cross(right, forward);
  return [0, 1, 2].map((i) => [right[i], camUp[i], -forward[i], position[i]]);
}

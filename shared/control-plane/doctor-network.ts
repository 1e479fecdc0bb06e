// `openclaw doctor`'s network checks (doctor.ts): can the functions, from their subnets and with their
// security groups, reach what they call? Read-only EC2 Describe calls (subnets, route
// tables, VPC endpoints, security groups, the S3 prefix list) and EFS
// DescribeMountTargetSecurityGroups; nothing is changed and no packet is sent.
//
//   S3           a gateway endpoint on each subnet's route table, an S3 interface endpoint
//                with private DNS, or a default route through a NAT gateway; and HTTPS egress
//                to where that leads (the S3 prefix list or anywhere; the endpoint's group)
//   EventBridge  (when the functions publish events) an `events` interface endpoint with
//                private DNS, or a NAT route; egress to it, and its group letting them in
//   SQS          (when the backup function has the work queue) the same, for `sqs`: a backup
//                longer than one invocation hands its next piece over through it
//   Secrets      (when the restore function reads identities, --identity-secret) the same, for
//   Manager      `secretsmanager`; a warning only, as other restores do not need it
//   EFS          NFS (2049) from the functions' groups to a mount target's, both ways
//
// A Lambda function's network interfaces never get a public IP: a route to an internet
// gateway alone does not take it out of the VPC. Routes through a transit gateway, a
// peering or an appliance cannot be followed from here: they are reported as unverified.

import {
  DescribeManagedPrefixListsCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcEndpointsCommand,
  type EC2Client,
  type IpPermission,
  type RouteTable,
  type SecurityGroup,
  type Subnet,
  type VpcEndpoint,
} from '@aws-sdk/client-ec2';
import { DescribeMountTargetSecurityGroupsCommand, type EFSClient, type MountTargetDescription } from '@aws-sdk/client-efs';

import { translateAwsError } from './aws-errors.js';
import type { ControlPlane } from './deployment.js';

export type NetworkStatus = 'ok' | 'warn' | 'fail';

export interface NetworkCheck {
  readonly check: string;
  readonly status: NetworkStatus;
  readonly detail: string;
}

export interface FunctionNetwork {
  readonly vpcId: string;
  readonly subnetIds: readonly string[];
  readonly securityGroupIds: readonly string[];
  /** Whether some function publishes completion events (OPENCLAW_EVENT_BUS). */
  readonly publishesEvents: boolean;
  /** Whether the backup function hands long backups over to the work queue (OPENCLAW_WORK_QUEUE_URL). */
  readonly usesWorkQueue: boolean;
  /** Whether the restore function reads age identities from Secrets Manager (OPENCLAW_STACK_PREFIX set). */
  readonly readsIdentitySecrets: boolean;
  /** The backup bucket, to check the S3 endpoint's policy names it. */
  readonly bucket?: string;
}

export interface NetworkClients {
  readonly ec2: EC2Client;
  readonly efs: EFSClient;
}

const HTTPS = 443;
const NFS = 2049;
const ANYWHERE = '0.0.0.0/0';

/** What the Describe calls returned, in the shape the checks need. */
interface Facts {
  readonly region: string;
  readonly subnets: ReadonlyMap<string, Subnet>;
  readonly routeTables: readonly RouteTable[];
  readonly endpoints: readonly VpcEndpoint[];
  readonly groups: ReadonlyMap<string, SecurityGroup>;
  readonly s3PrefixListId?: string;
  readonly mountTargets: readonly (MountTargetDescription & { readonly securityGroups: readonly string[] })[];
}

export async function checkNetwork(
  plane: ControlPlane,
  region: string,
  network: FunctionNetwork,
  mountTargets: readonly MountTargetDescription[],
  clients: NetworkClients,
): Promise<NetworkCheck[]> {
  const facts = await gatherFacts(plane, region, network, mountTargets, clients);
  const services = [
    ...(network.publishesEvents ? [EVENTBRIDGE] : []),
    ...(network.usesWorkQueue ? [SQS] : []),
    ...(network.readsIdentitySecrets ? [SECRETS_MANAGER] : []),
  ];
  return [s3Check(network, facts), ...services.map((target) => interfaceServiceCheck(network, facts, target)), efsCheck(network, facts)];
}

/** A service the functions reach over HTTPS through an interface endpoint or a NAT gateway. */
interface InterfaceService {
  /** The endpoint service's last part: com.amazonaws.<region>.<name>. */
  readonly name: string;
  readonly label: string;
  /** What breaks when it cannot be reached, appended to every problem. */
  readonly consequence: string;
  /** The status when it cannot be reached (a route that cannot be followed is always a warning). */
  readonly unreachable: NetworkStatus;
}

const EVENTBRIDGE: InterfaceService = { name: 'events', label: 'EventBridge', consequence: 'completion events would not be published; backups still succeed', unreachable: 'fail' };
const SQS: InterfaceService = { name: 'sqs', label: 'SQS', consequence: 'backups longer than one invocation would fail at the hand-over to their next piece', unreachable: 'fail' };
const SECRETS_MANAGER: InterfaceService = {
  name: 'secretsmanager',
  label: 'Secrets Manager',
  consequence: 'restores with --identity-secret would fail; other restores and backups are unaffected',
  unreachable: 'warn',
};

async function gatherFacts(
  plane: ControlPlane,
  region: string,
  network: FunctionNetwork,
  mountTargets: readonly MountTargetDescription[],
  { ec2, efs }: NetworkClients,
): Promise<Facts> {
  const describe = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw translateAwsError(error, plane, `describing ${what}`);
    }
  };
  const vpcFilter = [{ Name: 'vpc-id', Values: [network.vpcId] }];
  const [routeTables, endpoints, prefixLists, targets] = await Promise.all([
    describe('the route tables', () => ec2.send(new DescribeRouteTablesCommand({ Filters: vpcFilter }))),
    describe('the VPC endpoints', () => ec2.send(new DescribeVpcEndpointsCommand({ Filters: vpcFilter }))),
    describe('the S3 prefix list', () =>
      ec2.send(new DescribeManagedPrefixListsCommand({ Filters: [{ Name: 'prefix-list-name', Values: [`com.amazonaws.${region}.s3`] }] })),
    ),
    describe('the mount targets\' security groups', () =>
      Promise.all(
        mountTargets
          .filter((target) => target.VpcId === network.vpcId && target.MountTargetId !== undefined)
          .map(async (target) => ({
            ...target,
            securityGroups:
              (await efs.send(new DescribeMountTargetSecurityGroupsCommand({ MountTargetId: target.MountTargetId }))).SecurityGroups ?? [],
          })),
      ),
    ),
  ]);
  const vpcEndpoints = endpoints.VpcEndpoints ?? [];
  const subnetIds = [
    ...new Set([
      ...network.subnetIds,
      ...vpcEndpoints.flatMap((endpoint) => endpoint.SubnetIds ?? []),
      ...targets.map((target) => target.SubnetId ?? '').filter((id) => id !== ''),
    ]),
  ];
  const groupIds = [
    ...new Set([...network.securityGroupIds, ...vpcEndpoints.flatMap((endpoint) => (endpoint.Groups ?? []).map((group) => group.GroupId ?? '')), ...targets.flatMap((target) => target.securityGroups)]),
  ].filter((id) => id !== '');
  const [subnets, groups] = await Promise.all([
    describe('the subnets', () => ec2.send(new DescribeSubnetsCommand({ SubnetIds: subnetIds }))),
    describe('the security groups', () => ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: groupIds }))),
  ]);
  return {
    region,
    subnets: new Map((subnets.Subnets ?? []).map((subnet) => [subnet.SubnetId ?? '', subnet])),
    routeTables: routeTables.RouteTables ?? [],
    endpoints: vpcEndpoints.filter((endpoint) => (endpoint.State ?? '').toLowerCase() === 'available'),
    groups: new Map((groups.SecurityGroups ?? []).map((group) => [group.GroupId ?? '', group])),
    ...(prefixLists.PrefixLists?.[0]?.PrefixListId !== undefined && { s3PrefixListId: prefixLists.PrefixLists[0].PrefixListId }),
    mountTargets: targets,
  };
}

// ---------------------------------------------------------------------------------------
// The checks

function s3Check(network: FunctionNetwork, facts: Facts): NetworkCheck {
  const check = 'network: S3';
  const gateway = facts.endpoints.find((endpoint) => endpoint.VpcEndpointType === 'Gateway' && endpoint.ServiceName === service(facts, 's3'));
  const iface = facts.endpoints.find((endpoint) => endpoint.VpcEndpointType === 'Interface' && endpoint.ServiceName === service(facts, 's3'));
  const s3Destinations: Destination = { cidrs: [ANYWHERE], prefixLists: facts.s3PrefixListId === undefined ? [] : [facts.s3PrefixListId] };
  const problems: string[] = [];
  const paths = new Set<string>();
  for (const subnetId of network.subnetIds) {
    const table = routeTableOf(facts, subnetId);
    if (gateway !== undefined && table !== undefined && (gateway.RouteTableIds ?? []).includes(table.RouteTableId ?? '')) {
      if (egressAllows(facts, network.securityGroupIds, HTTPS, s3Destinations)) {
        paths.add(`gateway endpoint ${gateway.VpcEndpointId}`);
        continue;
      }
      problems.push(`${subnetId}: the gateway endpoint ${gateway.VpcEndpointId} is routed, but the functions' security groups let no HTTPS out to the S3 prefix list${facts.s3PrefixListId === undefined ? '' : ` ${facts.s3PrefixListId}`}`);
      continue;
    }
    if (iface !== undefined && iface.PrivateDnsEnabled === true && interfaceReachable(facts, network, iface)) {
      paths.add(`interface endpoint ${iface.VpcEndpointId}`);
      continue;
    }
    const out = defaultRoute(table);
    if (out.kind === 'nat') {
      if (egressAllows(facts, network.securityGroupIds, HTTPS, s3Destinations)) {
        paths.add(`NAT gateway ${out.target}`);
        continue;
      }
      problems.push(`${subnetId}: a NAT route, but the functions' security groups let no HTTPS out to S3`);
      continue;
    }
    problems.push(`${subnetId}: ${noWayOut(out, 'an S3 gateway endpoint on its route table')}`);
  }
  if (problems.length > 0) return { check, status: problems.every((problem) => problem.includes('cannot be followed')) ? 'warn' : 'fail', detail: problems.join('; ') };
  const policyNote = gateway !== undefined && paths.has(`gateway endpoint ${gateway.VpcEndpointId}`) ? endpointPolicyNote(gateway, network.bucket) : undefined;
  return {
    check,
    status: policyNote === undefined ? 'ok' : 'warn',
    detail: `reachable through ${[...paths].join(', ')}${policyNote === undefined ? '' : `; ${policyNote}`}`,
  };
}

function interfaceServiceCheck(network: FunctionNetwork, facts: Facts, target: InterfaceService): NetworkCheck {
  const check = `network: ${target.label}`;
  const serviceName = service(facts, target.name);
  const endpoint = facts.endpoints.find((candidate) => candidate.VpcEndpointType === 'Interface' && candidate.ServiceName === serviceName);
  if (endpoint?.PrivateDnsEnabled === true) {
    const blocked = interfaceProblem(facts, network, endpoint);
    if (blocked === undefined) return { check, status: 'ok', detail: `reachable through the interface endpoint ${endpoint.VpcEndpointId}` };
    return { check, status: target.unreachable, detail: `${blocked} (${target.consequence})` };
  }
  // Without private DNS the functions resolve the service's public name: only a NAT route takes them there.
  const unused = endpoint === undefined ? undefined : `the ${target.name} endpoint ${endpoint.VpcEndpointId} has private DNS off: the functions resolve ${target.label}'s public name and do not use it`;
  const wanted = endpoint === undefined ? `an interface endpoint for ${serviceName}` : `private DNS on the endpoint ${endpoint.VpcEndpointId}`;
  const problems: string[] = [];
  for (const subnetId of network.subnetIds) {
    const out = defaultRoute(routeTableOf(facts, subnetId));
    if (out.kind === 'nat') {
      if (!egressAllows(facts, network.securityGroupIds, HTTPS, { cidrs: [ANYWHERE], prefixLists: [] })) {
        problems.push(`${subnetId}: a NAT route, but the functions' security groups let no HTTPS out to anywhere (${target.label} has no prefix list)`);
      }
      continue;
    }
    problems.push(`${subnetId}: ${noWayOut(out, wanted)}`);
  }
  if (problems.length === 0) return { check, status: 'ok', detail: `reachable through the NAT route of every subnet${unused === undefined ? '' : `; ${unused}`}` };
  return {
    check,
    status: problems.every((problem) => problem.includes('cannot be followed')) ? 'warn' : target.unreachable,
    detail: `${[...(unused === undefined ? [] : [unused]), ...problems].join('; ')} (${target.consequence})`,
  };
}

function efsCheck(network: FunctionNetwork, facts: Facts): NetworkCheck {
  const check = 'network: EFS (NFS 2049)';
  if (facts.mountTargets.length === 0) return { check, status: 'fail', detail: `no mount target in the functions' VPC ${network.vpcId}` };
  const functionCidrs = network.subnetIds.map((id) => facts.subnets.get(id)?.CidrBlock).filter((cidr): cidr is string => cidr !== undefined);
  const reachable = facts.mountTargets.filter((target) => {
    const out = egressAllows(facts, network.securityGroupIds, NFS, { cidrs: [], prefixLists: [], groups: target.securityGroups, address: target.IpAddress });
    const inbound = target.securityGroups.some((groupId) => ingressAllows(facts, groupId, NFS, network.securityGroupIds, functionCidrs));
    return out && inbound;
  });
  if (reachable.length === 0) {
    return {
      check,
      status: 'fail',
      detail: `no mount target accepts NFS from the functions: their security groups need egress on 2049 to ${facts.mountTargets[0]!.securityGroups.join(', ') || 'the mount targets\' group'}, and that group ingress on 2049 from them`,
    };
  }
  return { check, status: 'ok', detail: `${reachable.length} of ${facts.mountTargets.length} mount target${facts.mountTargets.length === 1 ? '' : 's'} accept NFS from the functions` };
}

// ---------------------------------------------------------------------------------------
// Routes, endpoints, security groups

type DefaultRoute =
  | { readonly kind: 'nat'; readonly target: string }
  | { readonly kind: 'igw'; readonly target: string }
  | { readonly kind: 'other'; readonly target: string }
  | { readonly kind: 'none' };

function service(facts: Facts, name: string): string {
  return `com.amazonaws.${facts.region}.${name}`;
}

/** The subnet's route table: its explicit association, else the VPC's main table. */
function routeTableOf(facts: Facts, subnetId: string): RouteTable | undefined {
  return (
    facts.routeTables.find((table) => (table.Associations ?? []).some((association) => association.SubnetId === subnetId)) ??
    facts.routeTables.find((table) => (table.Associations ?? []).some((association) => association.Main === true))
  );
}

function defaultRoute(table: RouteTable | undefined): DefaultRoute {
  const route = (table?.Routes ?? []).find((candidate) => candidate.DestinationCidrBlock === ANYWHERE && candidate.State !== 'blackhole');
  if (route === undefined) return { kind: 'none' };
  if (route.NatGatewayId !== undefined) return { kind: 'nat', target: route.NatGatewayId };
  if (route.GatewayId?.startsWith('igw-') === true) return { kind: 'igw', target: route.GatewayId };
  const other = route.TransitGatewayId ?? route.VpcPeeringConnectionId ?? route.NetworkInterfaceId ?? route.InstanceId ?? route.GatewayId ?? 'unknown';
  return { kind: 'other', target: other };
}

function noWayOut(out: DefaultRoute, wanted: string): string {
  switch (out.kind) {
    case 'igw':
      return `only an internet gateway route (${out.target}), and Lambda's network interfaces have no public IP: add a NAT gateway or ${wanted}`;
    case 'other':
      return `the default route goes to ${out.target}, which cannot be followed from here: make sure it leads out, or add ${wanted}`;
    default:
      return `no route out of the VPC: add ${wanted} or a NAT gateway`;
  }
}

function interfaceReachable(facts: Facts, network: FunctionNetwork, endpoint: VpcEndpoint): boolean {
  return interfaceProblem(facts, network, endpoint) === undefined;
}

/** Why the functions cannot open HTTPS to an interface endpoint, or undefined when they can. */
function interfaceProblem(facts: Facts, network: FunctionNetwork, endpoint: VpcEndpoint): string | undefined {
  const endpointGroups = (endpoint.Groups ?? []).map((group) => group.GroupId ?? '').filter((id) => id !== '');
  const endpointCidrs = (endpoint.SubnetIds ?? []).map((id) => facts.subnets.get(id)?.CidrBlock).filter((cidr): cidr is string => cidr !== undefined);
  if (!egressAllows(facts, network.securityGroupIds, HTTPS, { cidrs: endpointCidrs, prefixLists: [], groups: endpointGroups, within: true })) {
    return `the functions' security groups let no HTTPS out to the endpoint ${endpoint.VpcEndpointId} (its groups ${endpointGroups.join(', ') || 'none'})`;
  }
  const functionCidrs = network.subnetIds.map((id) => facts.subnets.get(id)?.CidrBlock).filter((cidr): cidr is string => cidr !== undefined);
  if (!endpointGroups.some((groupId) => ingressAllows(facts, groupId, HTTPS, network.securityGroupIds, functionCidrs))) {
    return `the endpoint ${endpoint.VpcEndpointId}'s security groups (${endpointGroups.join(', ') || 'none'}) do not let HTTPS in from the functions`;
  }
  return undefined;
}

/** The S3 endpoint's policy, when it evidently leaves out the backup bucket. */
function endpointPolicyNote(endpoint: VpcEndpoint, bucket: string | undefined): string | undefined {
  if (bucket === undefined || endpoint.PolicyDocument === undefined) return undefined;
  let document: { Statement?: unknown };
  try {
    document = JSON.parse(decodeURIComponent(endpoint.PolicyDocument)) as { Statement?: unknown };
  } catch {
    return undefined;
  }
  const statements = [document.Statement].flat().filter((statement): statement is Record<string, unknown> => typeof statement === 'object' && statement !== null);
  const allows = statements
    .filter((statement) => statement.Effect === 'Allow')
    .flatMap((statement) => [statement.Resource].flat())
    .some((resource) => resource === '*' || (typeof resource === 'string' && (resource.includes(`:::${bucket}`) || resource === 'arn:aws:s3:::*')));
  return allows ? undefined : `the endpoint's policy does not name the bucket ${bucket}: requests through it may be denied`;
}

interface Destination {
  readonly cidrs: readonly string[];
  readonly prefixLists: readonly string[];
  readonly groups?: readonly string[];
  /** An IP address the rule's CIDR must contain (a mount target's). */
  readonly address?: string;
  /** A rule CIDR containing one of `cidrs` (not only equal to it) counts too. */
  readonly within?: boolean;
}

function egressAllows(facts: Facts, groupIds: readonly string[], port: number, destination: Destination): boolean {
  return groupIds.some((groupId) =>
    (facts.groups.get(groupId)?.IpPermissionsEgress ?? []).some((rule) => {
      if (!coversPort(rule, port)) return false;
      const ranges = (rule.IpRanges ?? []).map((range) => range.CidrIp ?? '');
      if (ranges.includes(ANYWHERE)) return true;
      if (ranges.some((range) => destination.cidrs.includes(range))) return true;
      if (destination.within === true && ranges.some((range) => destination.cidrs.some((cidr) => cidrContains(range, cidr)))) return true;
      if (destination.address !== undefined && ranges.some((range) => cidrContains(range, `${destination.address}/32`))) return true;
      if ((rule.PrefixListIds ?? []).some((list) => destination.prefixLists.includes(list.PrefixListId ?? ''))) return true;
      return (rule.UserIdGroupPairs ?? []).some((pair) => (destination.groups ?? []).includes(pair.GroupId ?? ''));
    }),
  );
}

function ingressAllows(facts: Facts, groupId: string, port: number, fromGroups: readonly string[], fromCidrs: readonly string[]): boolean {
  return (facts.groups.get(groupId)?.IpPermissions ?? []).some((rule) => {
    if (!coversPort(rule, port)) return false;
    if ((rule.UserIdGroupPairs ?? []).some((pair) => fromGroups.includes(pair.GroupId ?? ''))) return true;
    const ranges = (rule.IpRanges ?? []).map((range) => range.CidrIp ?? '');
    return fromCidrs.length > 0 && fromCidrs.every((cidr) => ranges.some((range) => cidrContains(range, cidr)));
  });
}

function coversPort(rule: IpPermission, port: number): boolean {
  if (rule.IpProtocol === '-1') return true;
  if (rule.IpProtocol !== 'tcp' && rule.IpProtocol !== '6') return false;
  return (rule.FromPort ?? 0) <= port && port <= (rule.ToPort ?? 65535);
}

/** Does the IPv4 block `outer` contain the block `inner`? */
export function cidrContains(outer: string, inner: string): boolean {
  const a = parseCidr(outer);
  const b = parseCidr(inner);
  if (a === undefined || b === undefined || b.bits < a.bits) return false;
  const mask = a.bits === 0 ? 0 : (0xffffffff << (32 - a.bits)) >>> 0;
  return ((a.address & mask) >>> 0) === ((b.address & mask) >>> 0);
}

function parseCidr(cidr: string): { address: number; bits: number } | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (match === null) return undefined;
  const octets = match.slice(1, 5).map(Number);
  const bits = Number(match[5]);
  if (octets.some((octet) => octet > 255) || bits > 32) return undefined;
  return { address: (((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0), bits };
}
